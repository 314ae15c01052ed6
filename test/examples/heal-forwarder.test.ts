// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's heal/remote-forwarder-death and heal/local-forwarder-remote-forwarder, run from our examples' READMEs on `nsm up --nodes 2` (see ./readme.ts).
 * Two READMEs a file at most: a file must end within the suite's per-file timeout (300 s).
 */
import { exampleSuite } from "./readme.js";

exampleSuite("heal READMEs: forwarder deaths", ["remote-forwarder-death", "local-forwarder-remote-forwarder"]);
