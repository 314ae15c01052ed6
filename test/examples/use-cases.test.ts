// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's use-cases Kernel2Ethernet2Kernel (VXLAN) and Kernel2IP2Kernel (WireGuard), run from our examples' READMEs on `nsm up --nodes 2` (see ./readme.ts).
 * Two READMEs a file at most: a file must end within the suite's per-file timeout (300 s).
 */
import { exampleSuite } from "./readme.js";

exampleSuite("use-case READMEs across two nodes", ["kernel2ethernet2kernel", "kernel2ip2kernel"], { wireguard: true });
