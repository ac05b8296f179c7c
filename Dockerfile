# Multi-stage build of SSP. Untested here (no Docker engine on the build
# machines); see README "Deployment".
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --bin ssp

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/ssp ssp && mkdir -p /var/lib/ssp && chown ssp /var/lib/ssp
COPY --from=build /src/target/release/ssp /usr/local/bin/ssp
COPY config.toml /etc/ssp/config.toml
USER ssp
WORKDIR /var/lib/ssp
ENV SPOOKY_LISTEN_ADDR=0.0.0.0:8667
EXPOSE 8667
ENTRYPOINT ["/usr/local/bin/ssp", "--config", "/etc/ssp/config.toml"]
