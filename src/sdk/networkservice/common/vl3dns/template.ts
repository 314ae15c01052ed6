// SPDX-License-Identifier: Apache-2.0
/**
 * The name templates of vL3 DNS (upstream NSM_DNS_TEMPLATES, Go templates such as
 * `{{ index .Labels "podName" }}.{{ .NetworkService }}.`). Only what those templates use is
 * understood: `{{ index .Labels "KEY" }}`, `{{ .Labels.KEY }}` and `{{ .NetworkService }}`; any
 * other action is InvalidArgument when the template is parsed. A name is made lower case and
 * fully qualified (trailing dot); a label that is missing gives no name.
 */
import { invalidArgument } from "../../../core/errors.js";

/** What a template sees of a connection. */
export interface DnsTemplateInput {
  readonly labels: Readonly<Record<string, string>>;
  readonly networkService: string;
}

/** A parsed template: the name for a connection, or undefined when a label it needs is missing. */
export type DnsTemplate = (input: DnsTemplateInput) => string | undefined;

type Part = string | ((input: DnsTemplateInput) => string | undefined);

function action(text: string, template: string): Part {
  const a = text.trim();
  if (a === ".NetworkService") return (i) => i.networkService || undefined;
  const index = /^index\s+\.Labels\s+"([^"]+)"$/.exec(a);
  const dotted = /^\.Labels\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(a);
  const key = index?.[1] ?? dotted?.[1];
  if (key !== undefined) return (i) => i.labels[key] || undefined;
  throw invalidArgument(`DNS template ${JSON.stringify(template)}: unknown action {{${text}}}`);
}

/** Parses one template (InvalidArgument naming the part it does not understand). */
export function parseDnsTemplate(template: string): DnsTemplate {
  const parts: Part[] = [];
  let rest = template;
  while (rest) {
    const open = rest.indexOf("{{");
    if (open < 0) {
      parts.push(rest);
      break;
    }
    const close = rest.indexOf("}}", open);
    if (close < 0) throw invalidArgument(`DNS template ${JSON.stringify(template)}: "{{" without "}}"`);
    if (open > 0) parts.push(rest.slice(0, open));
    parts.push(action(rest.slice(open + 2, close), template));
    rest = rest.slice(close + 2);
  }
  if (parts.length === 0) throw invalidArgument("DNS template is empty");
  return (input) => {
    let name = "";
    for (const p of parts) {
      const v = typeof p === "string" ? p : p(input);
      if (v === undefined) return undefined;
      name += v;
    }
    name = name.toLowerCase();
    return name.endsWith(".") ? name : `${name}.`;
  };
}
