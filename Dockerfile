# syntax=docker/dockerfile:1

# Build stage: a release binary from the locked dependency set.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /app
COPY . .
RUN cargo build --release --locked

# Runtime stage: glibc, CA certificates, no shell, non-root.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /app/target/release/payment-mcp /usr/local/bin/payment-mcp
USER nonroot:nonroot
# MCP over stdio: run with `docker run -i`. Configuration comes from PAYMENT_* environment variables.
ENTRYPOINT ["/usr/local/bin/payment-mcp"]
