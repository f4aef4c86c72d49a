# The operator image: `docker build -t ghcr.io/legate-dev/legate:0.1.0 --build-arg LEGATE_COMMIT=$(git rev-parse --short=12 HEAD) .`
#
# Stage 1 builds a static binary (musl, which Alpine's Rust targets by
# default); stage 2 is distroless "static": no shell, no package manager, no
# libc, a non-root user. The Envoy image that Gateways run is not built here:
# Gateways default to the Envoy release the tests use (docker.io/envoyproxy/envoy:v1.40.0).

# The toolchain the project is developed and tested with.
FROM docker.io/library/rust:1.95-alpine AS build
# ring (TLS) compiles C: musl's headers and a C compiler.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# The commit that `legate version` prints (.git is not sent to the build).
ARG LEGATE_COMMIT=unknown
ENV LEGATE_COMMIT=${LEGATE_COMMIT}
RUN cargo build --release --locked -p legate-operator \
 && cp target/release/legate /legate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /legate /legate
# distroless's "nonroot" user; the Deployment's securityContext says the same.
USER 65532:65532
EXPOSE 18000 8081 9090
ENTRYPOINT ["/legate"]
CMD ["run"]
