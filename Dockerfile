# VeeamGateway container: a Swift 6 build stage, then a slim Debian runtime.
#   docker build -t veeam-gateway .
#   docker run -p 8080:8080 -v $PWD/config/gateway.yaml:/etc/veeam-gateway/gateway.yaml:ro \
#     -v /run/secrets:/run/secrets:ro -e VB365_ABC_PASSWORD=… veeam-gateway
#   docker run -p 8080:8080 veeam-gateway demo      # the demo: simulated upstreams, built-in config
# The config must listen on 0.0.0.0 inside the container (listen.host or VEEAM_GATEWAY__LISTEN__HOST).
# No secret is baked in: passwords and keys come from mounted files or the environment.

ARG SWIFT_IMAGE=swift:6.3-bookworm
FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
# The same install and build scripts CI runs.
COPY scripts/ scripts/
RUN bash scripts/install-deps.sh
# The manifest names every target, so the whole tree is needed before resolving.
COPY Package.swift ./
COPY Sources/ Sources/
COPY Benchmarks/ Benchmarks/
COPY Tests/ Tests/
# The release build, then its demo run with nothing but the binary (no config/ in this stage).
RUN bash scripts/build-release.sh /out \
 && bash scripts/check-demo-anywhere.sh /out/veeam-gateway

FROM debian:bookworm-slim
# Unpinned on purpose: the runtime takes Debian's security updates at each build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4 libhiredis0.14 ca-certificates libstdc++6 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin gateway
COPY --from=build /out/ /app/
COPY config/gateway.yaml /etc/veeam-gateway/gateway.yaml
ENV VEEAM_GATEWAY__LISTEN__HOST=0.0.0.0
WORKDIR /app
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/app/veeam-gateway", "probe", "http://127.0.0.1:8080/healthz", "--timeout", "4"]
ENTRYPOINT ["/app/veeam-gateway"]
CMD ["serve", "--config", "/etc/veeam-gateway/gateway.yaml"]
