# webrtc-kvs-agent for Fargate (linux/amd64 or arm64). Debian 12 + Node 20, Debian's Chromium and GStreamer,
# and kvssink built from the Kinesis Video Streams producer SDK (kvssink is not packaged by Debian).

# --- kvssink ------------------------------------------------------------------------------------------
FROM debian:12-slim AS kvssink
ARG KVS_PRODUCER_SDK_VERSION=v3.5.0
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates git cmake make g++ pkg-config \
      libssl-dev libcurl4-openssl-dev liblog4cplus-dev \
      libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
    && rm -rf /var/lib/apt/lists/*
RUN git clone --depth 1 --branch "${KVS_PRODUCER_SDK_VERSION}" \
      https://github.com/awslabs/amazon-kinesis-video-streams-producer-sdk-cpp.git /src \
    && cmake -S /src -B /src/build -DBUILD_GSTREAMER_PLUGIN=ON -DBUILD_DEPENDENCIES=OFF \
      -DBUILD_TEST=OFF -DBUILD_SAMPLES=OFF -DCMAKE_BUILD_TYPE=Release \
    && cmake --build /src/build -j"$(nproc)" \
    && mkdir -p /opt/kvssink/lib \
    && find /src/build /src/open-source -name '*.so*' -exec cp -a {} /opt/kvssink/lib/ \;

# --- application build --------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

# --- runtime ------------------------------------------------------------------------------------------
FROM node:20-bookworm-slim
WORKDIR /app
# The same installer CI runs, so the image and the tests use the same Debian packages.
COPY scripts/install-system-deps.sh scripts/system-packages.txt ./scripts/
RUN bash scripts/install-system-deps.sh && apt-get install -y --no-install-recommends \
      libcurl4 liblog4cplus-2.0.4 && rm -rf /var/lib/apt/lists/*
COPY --from=kvssink /opt/kvssink/lib /opt/kvssink/lib
ENV GST_PLUGIN_PATH=/opt/kvssink/lib LD_LIBRARY_PATH=/opt/kvssink/lib NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./
# Chromium refuses to run as root without --no-sandbox (which the agent passes); run as the node user anyway.
USER node
ENTRYPOINT ["node", "--no-warnings", "dist/node/agent/main.js", "--web-root", "dist/web"]
