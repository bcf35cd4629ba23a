# Multi-stage build of every server binary; one runtime image runs the api-server, the edges
# and HAProxy (whose config the `cluster` binary renders from haproxy/haproxy.cfg.tmpl).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p api-server -p edge-server -p cluster

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data && chown nobody /data
# /data: the api-server's DATA_DIR (attachments); a fresh volume mounted there keeps the owner.
COPY --from=build /src/target/release/api-server /src/target/release/edge-server \
     /src/target/release/cluster /usr/local/bin/
USER nobody
EXPOSE 8080 9000 9001
CMD ["api-server"]
