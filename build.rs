// The migrations are embedded by `sqlx::migrate!`: build again when one is added or changed
// (as `sqlx migrate build-script` writes it).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
