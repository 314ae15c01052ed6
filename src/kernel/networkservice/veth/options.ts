// SPDX-License-Identifier: Apache-2.0
/** Options of `kernelXconnectServer`: those every cross-connect takes (`../xconnect/options.ts`). */
import type { XconnectOptions } from "../xconnect/options.js";

export type KernelXconnectServerOptions = XconnectOptions;
