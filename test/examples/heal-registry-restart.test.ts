// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's heal/registry-restart, run from our example's README on `nsm up --nodes 2` (see
 * ./readme.ts): after the registry's restart a new client connects, and the interfaces of the
 * clients from before (one of them control-plane only, refreshing every 10 s) keep their index.
 * Alone in its file: the README waits 45 s for refreshes.
 */
import { exampleSuite } from "./readme.js";

exampleSuite("heal README: registry restart", ["registry-restart"]);
