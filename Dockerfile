# Multi-stage build: compile in the Rust image, run in a slim Debian with only CA roots.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Build dependencies first so that source edits do not rebuild them.
# The workspace names the emulator's crate, which the service never uses: its manifest (and
# stand-ins for its sources) is all the build needs of it.
COPY Cargo.toml Cargo.lock build.rs ./
COPY emulator/Cargo.toml ./emulator/
COPY bench ./bench
RUN mkdir -p src emulator/src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && mkdir -p emulator/tests && cp src/main.rs emulator/src/main.rs && touch emulator/src/lib.rs emulator/tests/main.rs \
    && cargo build --release --locked --bin fleetgate
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin fleetgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 fleetgate
COPY --from=build /src/target/release/fleetgate /usr/local/bin/fleetgate
USER fleetgate
ENV FLEETGATE_LISTEN=0.0.0.0:8080 FLEETGATE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["fleetgate"]
CMD ["serve"]
