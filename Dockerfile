# webrtc-kvs-agent: the agent, Debian's Chromium and GStreamer (only the plugin sets the pipeline uses) and
# kvssink built from the KVS producer SDK. linux/amd64 and linux/arm64. The steps are the repository's own
# scripts, which CI runs too (scripts/install-system-deps.sh and its package lists, scripts/*kvssink*.sh).
#
#   docker build -t webrtc-kvs-agent .                                  production image, with kvssink
#   docker build --target runtime-nokvssink -t webrtc-kvs-agent:nokvssink .   the same without kvssink
#   docker build --build-context kvssink-src=DIR …       kvssink from DIR (scripts/fetch-kvssink-src.sh), offline
#   docker build --target emulator -t webrtc-kvs-agent-emulator .       the KVS emulator + pages (compose.yaml)
#
# podman/buildah: add `--format docker`, or HEALTHCHECK is dropped (OCI images have no health check).
# Base images are build arguments so that they can be swapped (a mirror, or local stand-ins: scripts/
# container-check.sh). Behind a TLS-intercepting proxy give npm its CA for the build only:
#   -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg NODE_EXTRA_CA_CERTS=/run/host-ca.crt
# (podman; with BuildKit use a secret or a mirror). The CA is never written into an image.

ARG NODE_IMAGE=node:24-bookworm-slim
ARG DEBIAN_IMAGE=debian:12-slim
ARG KVS_PRODUCER_SDK_VERSION=v3.5.0

# --- kvssink -------------------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS kvssink-toolchain
COPY scripts/install-system-deps.sh scripts/kvssink-build-packages.txt /tmp/deps/
RUN bash /tmp/deps/install-system-deps.sh --kvssink-build && rm -rf /var/lib/apt/lists/* /tmp/deps

# The SDK and the two repositories its CMake would clone, at pinned tags. Replace this stage with a local
# directory for an air-gapped build: --build-context kvssink-src=DIR (a named context wins over a stage).
FROM kvssink-toolchain AS kvssink-fetch
ARG KVS_PRODUCER_SDK_VERSION
COPY scripts/fetch-kvssink-src.sh /tmp/
RUN bash /tmp/fetch-kvssink-src.sh /kvssink-src "${KVS_PRODUCER_SDK_VERSION}"

FROM scratch AS kvssink-src
COPY --from=kvssink-fetch /kvssink-src /

FROM kvssink-toolchain AS kvssink-build
COPY --from=kvssink-src / /src/
COPY scripts/build-kvssink.sh /tmp/
RUN bash /tmp/build-kvssink.sh /src /opt/kvssink

# --- the app: `npm run build` (dist/web by Vite, dist/node by tsc) ------------------------------------------
FROM ${NODE_IMAGE} AS app-build
ARG NODE_EXTRA_CA_CERTS
ENV PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_update_notifier=false
WORKDIR /build
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
# All sources (.dockerignore keeps out node_modules, dist, recordings, .git): `npm run build` type-checks the
# whole tree, tests included, as CI does; only the agent's part is kept below.
COPY . .
RUN npm run build
# The image runs the agent only: its compiled tree (it imports nothing outside agent/) and its pages.
RUN mkdir -p /out/dist/node \
    && cp -a dist/node/agent /out/dist/node/ \
    && cp -a dist/web /out/dist/ \
    && find /out/dist -name '*.map' -delete \
    && cp package.json /out/

# Production dependencies only, from the lock file alone (source edits do not re-run this step).
FROM ${NODE_IMAGE} AS prod-deps
ARG NODE_EXTRA_CA_CERTS
ENV npm_config_update_notifier=false
WORKDIR /deps
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

# --- the KVS emulator and the built pages, for compose.yaml (development only; not the agent's image) -------
FROM ${NODE_IMAGE} AS emulator
# ffmpeg: the emulator's GetClip remuxes with it.
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=prod-deps /deps/node_modules node_modules
COPY --from=app-build /out/package.json ./
COPY --from=app-build /build/dist/node/agent dist/node/agent
COPY --from=app-build /build/dist/node/emulator dist/node/emulator
COPY --from=app-build /build/dist/node/scripts/servePages.js dist/node/scripts/
COPY --from=app-build /out/dist/web dist/web
ENV NODE_ENV=production KVS_EMULATOR_HOST=127.0.0.1 KVS_EMULATOR_PORT=4566
USER node
ENTRYPOINT ["node", "--no-warnings"]
CMD ["dist/node/emulator/main.js"]

# --- runtime, without kvssink (what CI builds and runs: it cannot fetch the SDK) -----------------------------
FROM ${NODE_IMAGE} AS runtime-nokvssink
COPY scripts/dpkg-slim.cfg /etc/dpkg/dpkg.cfg.d/webrtc-kvs-agent-slim
COPY scripts/install-system-deps.sh scripts/runtime-packages.txt /tmp/deps/
RUN bash /tmp/deps/install-system-deps.sh --runtime \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/deps \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/agent --shell /usr/sbin/nologin agent
WORKDIR /app
COPY --from=prod-deps /deps/node_modules /app/node_modules
COPY --from=app-build /out/ /app/
# Chromium's headless shell (the agent's default when headless) with the agent's flags
# (agent/browser/viewerBrowser.ts: --no-sandbox, --disable-dev-shm-usage, --disable-gpu), so Fargate needs no
# extra capability and no /dev/shm sizing.
ENV NODE_ENV=production \
    WEB_ROOT=/app/dist/web \
    OUTPUT_DIR=/recordings \
    METRICS_ADDRESS=127.0.0.1:9090
RUN install -d -o agent -g agent /recordings
USER agent
# GStreamer's plugin registry, built once here instead of at the first gst-launch of every container start.
RUN gst-inspect-1.0 matroskademux h264parse h264timestamper opusdec voaacenc aacparse mpegtsmux >/dev/null
# /healthz on METRICS_ADDRESS (set it, not --metrics-address, so that this check finds the endpoint).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["node", "-e", "const a=process.env.METRICS_ADDRESS||'127.0.0.1:9090';if(a==='off')process.exit(0);const i=a.lastIndexOf(':');let h=a.slice(0,i);if(h===''||h==='0.0.0.0')h='127.0.0.1';if(h==='::'||h==='[::]')h='[::1]';fetch('http://'+h+':'+a.slice(i+1)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# tini as PID 1 forwards SIGTERM to the agent (which drains within --stop-budget) and reaps Chromium's orphans.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--no-warnings", "--max-semi-space-size=2", "dist/node/agent/main.js"]
CMD []

# --- runtime: the production image (the default target) ------------------------------------------------------
FROM runtime-nokvssink AS runtime
USER root
COPY --from=kvssink-build /opt/kvssink /opt/kvssink
RUN echo /opt/kvssink/lib >/etc/ld.so.conf.d/kvssink.conf && ldconfig
ENV GST_PLUGIN_PATH=/opt/kvssink/lib
USER agent
RUN gst-inspect-1.0 kvssink >/dev/null
