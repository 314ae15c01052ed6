// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's features/annotated-namespace and features/change-nse-dynamically, run from our
 * examples' READMEs on `nsm up --nodes 2` (see ./readme.ts). Two READMEs a file at most: a file
 * must end within the suite's per-file timeout (300 s).
 */
import { exampleSuite } from "./readme.js";

exampleSuite("feature READMEs: annotated namespace, endpoint changed on a live connection", [
  "annotated-namespace",
  "change-nse-dynamically",
]);
