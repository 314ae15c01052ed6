#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The `nsm` command: runs the TypeScript entry point through tsx's loader.
import { register } from "tsx/esm/api";

register();
await import("../src/cmd/main.ts");
