// RFC 9457 problem+json answers, the same shape fleetgate gives.

/** A refusal: the HTTP status, the body, and headers to send. */
export function problem(status, code, detail, headers = {}) {
  const titles = { 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' };
  return {
    ok: false,
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
    body: {
      type: `urn:fleetgate:problem:${code}`,
      title: titles[status] || 'Error',
      status,
      detail,
      code,
    },
  };
}

/** The 401 for a missing or bad token, with its challenge. */
export function unauthorized(detail, error) {
  const challenge = error
    ? `Bearer realm="instance", error="${error}", error_description="${detail.replace(/"/g, "'")}"`
    : 'Bearer realm="instance"';
  return problem(401, 'unauthorized', detail, { 'www-authenticate': challenge });
}

/** Writes a refusal to a Node/Express response. */
export function send(res, refusal) {
  res.statusCode = refusal.status;
  for (const [name, value] of Object.entries(refusal.headers)) {
    res.setHeader(name, value);
  }
  res.end(JSON.stringify(refusal.body));
}

/** The `detail` of a problem+json answer, or '' for any other body. */
export async function detailOf(res) {
  try {
    return (await res.json()).detail || '';
  } catch {
    return '';
  }
}
