# SPDX-License-Identifier: Apache-2.0
# The single nsm-ts image: every role is `nsm <role>` (registry, nsmgr, forwarder, nsc,
# nse icmp-responder, admission-webhook). deploy/k8s and deploy/helm/nsm run it.
#   docker build -t nsm-ts/nsm:0.1.0 .
# test/k8s/dockerfile.test.ts checks that what this file copies exists and that every role
# starts from the runtime stage's file tree.

FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
# `npm ci` runs the install script, which builds the netlink addon (native/build.mjs).
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
# The dashboard's page (web/), bundled into dist/dashboard by scripts/build-ui.mjs.
COPY web ./web
COPY scripts/build-ui.mjs ./scripts/build-ui.mjs
# The roles bundled into dist/roles (a faster start) by scripts/build-roles.mjs.
COPY scripts/build-roles.mjs ./scripts/build-roles.mjs
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# wireguard-go: the forwarder's userspace WireGuard tunnels; iproute2 for debugging in the pod.
RUN apt-get update && apt-get install -y --no-install-recommends wireguard-go iproute2 \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/native/build/Release/nsnl.node ./native/build/Release/nsnl.node
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
RUN ln -s /app/bin/nsm.js /usr/local/bin/nsm
# A small young generation and two malloc arenas: less RSS per role; 16 libuv threads, so that
# link deletions waiting out the kernel's grace periods do not hold up other netlink work (see
# NSM_NODE_FLAGS and NSM_PROCESS_ENV in src/local/pods.ts; bin/nsm.js's shebang adds
# --optimize-for-size).
ENV NODE_OPTIONS=--max-semi-space-size=2 MALLOC_ARENA_MAX=2 UV_THREADPOOL_SIZE=16
CMD ["nsm", "help"]
