-- A pass that failed is retried by the leader with backoff, recorded with trigger 'retry'.

ALTER TABLE reconcile_runs DROP CONSTRAINT reconcile_runs_trigger_check;
ALTER TABLE reconcile_runs ADD CONSTRAINT reconcile_runs_trigger_check
    CHECK (trigger IN ('notify', 'cron', 'manual', 'startup', 'repair', 'retry'));
