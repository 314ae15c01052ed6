// SPDX-License-Identifier: Apache-2.0
/**
 * The `nsm` command line: one program, a subcommand per role (see DESIGN.md §3).
 * Only src/cmd reads the environment, prints to the console and exits the process.
 */
import { ConfigError } from "./env.js";

const USAGE = `usage: nsm <command> [args]

roles (configured by the upstream NSM_* environment variables):
  registry                 the registry (NSM_REGISTRY_BACKEND: memory, etcd or k8s)
  admission-webhook        injects the NSM client into pods annotated networkservicemesh.io
  nsmgr                    the node's network service manager
  forwarder                the kernel forwarder
  nse icmp-responder       the reference endpoint (NSM_CIDR_PREFIX, NSM_SERVICE_NAMES, ...)
  nse firewall             passthrough endpoint with an ACL (NSM_SERVICE_NAME, NSM_LABELS, NSM_ACL_CONFIG_PATH)
  nse bridge               L2 bridge service: clients share one bridge and subnet (NSM_CIDR_PREFIX, NSM_BRIDGE_DOMAIN)
  nse vl3                  vL3 endpoint: a block from NSM_PREFIX_SERVER_URL, peers with the other vL3 endpoints
  ipam                     the vL3 IPAM service (NSM_PREFIX, NSM_CLIENT_PREFIX_LEN, NSM_LISTEN_ON)
  vl3-lb                   vL3 load balancer: a vL3 client spreading NSM_PORT over the clients NSM_SELECTOR picks
  nse supplier             scale from zero: starts endpoints from a pod template (NSM_POD_DESCRIPTION_FILE)
  nse proxy                HTTP gateway: serves clients' HTTP servers to callers outside the mesh (NSM_PROXY_LISTEN_ON)
  nse external             clients reach a network outside the mesh (NSM_EXTERNAL_ADDRESSES, NSM_EXTERNAL_NAT)
  nsc [--init]             the client: sidecar (keeps connections) or init (request once, exit)
  dns-server               answers A/AAAA queries from NSM_DNS_RECORDS (name=ip,...) on NSM_LISTEN_ON (0.0.0.0:53)
  every role: identity from the SPIFFE Workload API in SPIFFE_ENDPOINT_SOCKET (required), mTLS,
  path tokens (NSM_MAX_TOKEN_LIFETIME, 10m), policies (NSM_REGISTRY_SERVER_POLICIES, ...);
  NSM_INSECURE=true turns all of that off, for debugging only

local runtime (one Linux machine, root, no Kubernetes; state in --state-dir DIR,
$NSM_LOCAL_STATE_DIR or /run/nsm-local):
  up [--nodes N] [--trust-domain TD] [--insecure]
                           start the identity provider (SPIFFE trust domain TD, default nsm.local),
                           a registry and N nodes (netns with nsmgr and forwarder); every hop is
                           mTLS with path tokens and policies. --insecure: none of that (debugging)
  apply -f FILE|DIR        run upstream-style manifests (Namespace, NetworkService, Deployment, Pod;
                           a directory with kustomization.yaml is read as a kustomization)
  get pods|deployments|nodes|namespaces|networkservices|networkserviceendpoints|connections [-n NS]
      connections -o wide|json|yaml   per-hop detail: mechanisms, interface, token expiries
  describe connection ID   path (names, token expiries, metrics), mechanisms, IP context, DNS, traffic
  top connections [--once] [--interval 1s]   rx/tx rates of each connection's client interface
  dashboard [--port 8080] [--address 127.0.0.1] [--nsmgr URL… --registry URL]
                           a live web page of the mesh: nodes, components, services, every
                           connection's path coloured by state, its detail, rates and events
                           (of the local runtime, or of a cluster's nsmgrs and registry)
  exec POD|deployments/NAME [-n NS] [-c CONTAINER] -- CMD...
  logs POD|deployments/NAME|registry|nsmgr/NODE|forwarder/NODE [-n NS] [-c CONTAINER] [--raw] [--tail N] [-f]
                           (-n nsm-system: identity-provider, registry, nsmgr-node-1, forwarder-node-1, ...)
  delete -f FILE|DIR       stop the pods, delete their namespaces, unregister NetworkServices
  delete ns|pod|deployment NAME…|-l SEL [-n NS]
                           by name or selector; a Deployment makes a deleted pod again; a pod of
                           nsm-system (registry, nsmgr-NODE, forwarder-NODE) restarts that component
  get KIND [NAME] [-l SEL] [--field-selector spec.nodeName==N] [-o name|wide|json|yaml|jsonpath=…|go-template=…]
  wait --for=condition=ready|delete [--timeout=1m] pod NAME|-l SEL [-n NS]
  scale deployment NAME --replicas=N [-n NS]
  label|annotate pod|ns NAME KEY=VALUE… [KEY-…] [--overwrite]
  describe KIND [NAME] [-n NS]
  create namespace NAME
  stop|start|restart registry|identity-provider|nsmgr/NODE|forwarder/NODE|pod/NAME [-n NS] [-c C] [--kill]
                           stop (SIGTERM, or SIGKILL with --kill) and/or start a component again
                           with its first command and environment (fault injection; pods keep
                           their network namespace, as a container restart)
  down                     remove every namespace, link and process the runtime made

other:
  sandbox                  the control plane in one process: prints a negotiated connection
`;

type Command = (args: string[]) => Promise<number | undefined>;

const commands: Record<string, () => Promise<Command>> = {
  registry: async () => async () => (await import("./registry.js")).runRegistry(),
  "admission-webhook": async () => async () => (await import("./admission-webhook.js")).runAdmissionWebhook(),
  nsmgr: async () => async () => (await import("./nsmgr.js")).runNsmgr(),
  forwarder: async () => async () => (await import("./forwarder.js")).runForwarder(),
  nse: async () => async (args) => {
    if (args[0] === "firewall") return (await import("./nse-firewall.js")).runFirewall();
    if (args[0] === "bridge") return (await import("./nse-bridge.js")).runBridge();
    if (args[0] === "vl3") return (await import("./nse-vl3.js")).runVl3();
    if (args[0] === "supplier") return (await import("./nse-supplier.js")).runSupplier();
    if (args[0] === "proxy") return (await import("./nse-proxy.js")).runProxy();
    if (args[0] === "external") return (await import("./nse-external.js")).runExternal();
    if (args[0] !== "icmp-responder") {
      process.stderr.write(
        `nsm nse: unknown endpoint "${args[0] ?? ""}" (available: icmp-responder, firewall, bridge, vl3, supplier, proxy, external)\n`,
      );
      return 2;
    }
    return (await import("./nse.js")).runIcmpResponder();
  },
  nsc: async () => async (args) => (await import("./nsc.js")).runNsc(args),
  "dns-server": async () => async () => (await import("./dns-server.js")).runDnsServer(),
  ipam: async () => async () => (await import("./ipam.js")).runIpam(),
  "vl3-lb": async () => async () => (await import("./vl3-lb.js")).runVl3Lb(),
  // Internal (started by `nsm up`): the embedded CA serving the SPIFFE Workload API.
  "identity-provider": async () => async () => (await import("./identity-provider.js")).runIdentityProvider(),
  ...Object.fromEntries(
    [
      "up",
      "apply",
      "get",
      "exec",
      "logs",
      "delete",
      "down",
      "stop",
      "start",
      "restart",
      "wait",
      "scale",
      "label",
      "annotate",
      "describe",
      "top",
      "create",
    ].map((name): [string, () => Promise<Command>] => [
      name,
      async () => {
        const { runLocal } = await import("./local.js");
        return (args) => runLocal(name, args);
      },
    ]),
  ),
  dashboard: async () => async (args) => (await import("./dashboard.js")).runDashboard(args),
  sandbox: async () => async () => {
    const { sandboxDemo } = await import("./sandbox-demo.js");
    await sandboxDemo();
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`nsm: unknown command "${name}" (see nsm --help)\n`);
    return 2;
  }
  const run = await load();
  return (await run(args)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    // A role returns once it has shut down (servers drained, connections closed, registrations
    // dropped): exit now rather than wait for every client-side timer and channel of the SDK
    // to wind down, which made a stopped nsmgr linger until the runtime's SIGKILL.
    process.exit(code);
  },
  (err: unknown) => {
    // Exit now: a role that failed half way may still hold streams (e.g. the Workload API's).
    // By name too: the local runtime's commands are not in the roles' bundle (dist/roles), so
    // their ConfigError is another copy of the class.
    if (err instanceof ConfigError || (err instanceof Error && err.name === "ConfigError")) {
      process.stderr.write(`nsm: ${err.message}\n`);
      process.exit(2);
    }
    const e = err as { toStatusString?: () => string; message?: string };
    process.stderr.write(`nsm: ${e.toStatusString ? e.toStatusString() : (e.message ?? String(err))}\n`);
    process.exit(1);
  },
);
