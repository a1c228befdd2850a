# The load generator (`loadtest`) and the results CLI (`aiops-bench`) in one small image, for
# distributed load on Kubernetes (deploy/kubernetes/README.md):
#   docker build -t aiops-bench:latest .
#   docker run --rm aiops-bench:latest loadtest --help
# Stage 1 builds the two release binaries; stage 2 is Debian slim with only those binaries,
# CA certificates (https targets) and a non-root user.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The whole workspace: the binaries' crates, the service crate the reference target is built
# from (with its migrations, embedded at compile time) and the manifests of the other members.
COPY . .
RUN cargo build --release --locked --bin loadtest --bin aiops-bench \
    && strip target/release/loadtest target/release/aiops-bench

FROM debian:bookworm-slim
# ca-certificates is left unpinned on purpose: it follows Debian's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/loadtest /src/target/release/aiops-bench /usr/local/bin/
# The worker and merge Jobs write to a shared volume mounted at /results.
WORKDIR /results
USER 65532:65532
CMD ["loadtest", "--help"]
