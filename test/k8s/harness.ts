// SPDX-License-Identifier: Apache-2.0
/**
 * A real Kubernetes control plane for tests: Debian's etcd and a kube-apiserver built by
 * scripts/peers.sh (scripts/peers.d/k8s.sh), both on loopback with random ports and a temporary
 * directory, the apiserver serving TLS with certificates made here by openssl (a CA, its serving
 * certificate, an admin client certificate in system:masters, a service-account signing key).
 * This is the arrangement controller projects call envtest: no kubelet, no controller-manager,
 * no scheduler — objects are stored, validated, defaulted and sent through admission, pods are
 * never run. Both processes are stopped by their own PID.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer, isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { missingPeers, peerPath } from "../helpers/peers.js";

/** The peers a cluster needs; pass `missingK8sPeers()` to a test's `skip`. */
export const K8S_PEERS = ["etcd", "kube-apiserver", "kubectl"] as const;

export function missingK8sPeers(...more: string[]): string | undefined {
  return missingPeers(...K8S_PEERS, ...more);
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `-f -`). */
  input?: string;
  /** Impersonate this user (`--as`), e.g. `system:serviceaccount:nsm-system:registry-k8s-sa`. */
  as?: string;
}

export interface KubeCluster {
  /** The admin kubeconfig (user in system:masters). */
  kubeconfigPath: string;
  /** The apiserver's URL, https://127.0.0.1:PORT. */
  server: string;
  /** The CA that signed the apiserver's serving certificate and the client certificates. */
  caPath: string;
  /** Admin client certificate and key (PEM files) for direct HTTPS requests. */
  clientCertPath: string;
  clientKeyPath: string;
  /** etcd's client URL (plain HTTP on loopback), for tests that want the store itself. */
  etcdUrl: string;
  /** The temporary directory holding certificates, data and logs (removed by stop()). */
  dir: string;
  /** Runs the kubectl peer against this cluster; never throws on a non-zero exit. */
  kubectl(args: string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** A serving certificate for these DNS names or IPs, signed by the cluster's CA (PEM strings). */
  issueServingCertificate(names: string[]): Promise<ServingCertificate>;
  /** Stops the apiserver then etcd (SIGTERM by PID, SIGKILL after 10 s) and removes `dir`. */
  stop(): Promise<void>;
}

export interface ServingCertificate {
  certPem: string;
  keyPem: string;
  /** The cluster's CA certificate: a webhook configuration's caBundle. */
  caPem: string;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<KubectlResult>((resolve) => {
    const child = execFile(cmd, args, { env: options.env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (err && typeof err.code !== "number" ? err.message : "") });
    });
    child.stdin?.on("error", () => {}); // EPIPE when kubectl exits before reading its input
    child.stdin?.end(options.input ?? "");
  });
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const result = await run("openssl", args, { env: { ...process.env, OPENSSL_CONF: "/dev/null", RANDFILE: "" } });
  if (result.code !== 0) throw new Error(`openssl ${args.join(" ")} (in ${dir}): ${result.stderr.trim()}`);
}

/** CA, apiserver serving certificate, admin client certificate and service-account key pair. */
async function makeCertificates(dir: string): Promise<void> {
  const p = (name: string) => join(dir, name);
  const key = (name: string) => ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", p(name)];
  await Promise.all(["ca.key", "apiserver.key", "admin.key"].map((k) => openssl(dir, key(k))));
  await openssl(dir, ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p("sa.key")]);
  await openssl(dir, ["pkey", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub")]);
  await openssl(dir, [
    ...["req", "-x509", "-new", "-key", p("ca.key"), "-days", "2", "-subj", "/CN=nsm-test-ca", "-out", p("ca.crt")],
    ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
  const sans =
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:10.0.0.1";
  await signLeaf(dir, "apiserver", "/CN=kube-apiserver", `subjectAltName=${sans}\nextendedKeyUsage=serverAuth`);
  await signLeaf(dir, "admin", "/O=system:masters/CN=nsm-test-admin", "extendedKeyUsage=clientAuth");
}

let issued = 0;

async function issueServingCertificate(dir: string, names: string[]): Promise<ServingCertificate> {
  const name = `serving-${++issued}`;
  const p = (file: string) => join(dir, file);
  await openssl(dir, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", p(`${name}.key`)]);
  const sans = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
  await signLeaf(dir, name, `/CN=${names[0]}`, `subjectAltName=${sans}\nextendedKeyUsage=serverAuth`);
  const read = (file: string) => readFileSync(p(file), "utf8");
  return { certPem: read(`${name}.crt`), keyPem: read(`${name}.key`), caPem: read("ca.crt") };
}

async function signLeaf(dir: string, name: string, subject: string, extensions: string): Promise<void> {
  const p = (file: string) => join(dir, file);
  writeFileSync(
    p(`${name}.ext`),
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n${extensions}\n`,
  );
  await openssl(dir, ["req", "-new", "-key", p(`${name}.key`), "-subj", subject, "-out", p(`${name}.csr`)]);
  await openssl(dir, [
    ...["x509", "-req", "-in", p(`${name}.csr`), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial"],
    ...["-days", "2", "-extfile", p(`${name}.ext`), "-out", p(`${name}.crt`)],
  ]);
}

function kubeconfig(dir: string, server: string): string {
  const b64 = (file: string) => readFileSync(join(dir, file)).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: test",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64("ca.crt")}`,
    "users:",
    "- name: admin",
    "  user:",
    `    client-certificate-data: ${b64("admin.crt")}`,
    `    client-key-data: ${b64("admin.key")}`,
    "contexts:",
    "- name: test",
    "  context: {cluster: test, user: admin}",
    "current-context: test",
    "",
  ].join("\n");
}

interface Started {
  child: ChildProcess;
  exited: Promise<void>;
  log: string;
}

/**
 * The environment without proxy settings: the apiserver calls webhooks and kubectl calls the
 * apiserver, and none of that may leave the machine through a proxy.
 */
function localEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(name)) delete env[name];
  return { ...env, NO_PROXY: "*" };
}

function start(cmd: string, args: string[], log: string): Started {
  const out = createWriteStream(log);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: localEnv() });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  exited.then(() => out.end());
  return { child, exited, log };
}

async function stopProcess(p: Started): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null || p.child.pid === undefined) return;
  process.kill(p.child.pid, "SIGTERM");
  const timer = setTimeout(() => p.child.pid !== undefined && p.child.kill("SIGKILL"), 10_000);
  await p.exited;
  clearTimeout(timer);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** GET path on the apiserver as admin; resolves the status code (0 when it does not answer). */
function adminGet(server: string, dir: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      `${server}${path}`,
      {
        ca: readFileSync(join(dir, "ca.crt")),
        cert: readFileSync(join(dir, "admin.crt")),
        key: readFileSync(join(dir, "admin.key")),
        timeout: 5000,
      },
      (res) => {
        let body = "";
        res.on("data", (chunk) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", () => resolve({ status: 0, body: "" }));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** Polls until `ready()` is true, or throws `what` with the log's tail once `ms` have passed. */
async function waitFor(what: string, p: Started, ms: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const code = p.child.exitCode ?? p.child.signalCode;
    if (code !== null) throw new Error(`${what}: exited (${code})\n${tail(p.log)}`);
    if (await ready()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not ready after ${ms} ms\n${tail(p.log)}`);
}

async function startEtcd(dir: string): Promise<{ etcd: Started; etcdUrl: string }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const etcd = start(
    peerPath("etcd"),
    [
      ...["--name", "test", "--data-dir", join(dir, "etcd"), "--listen-client-urls", etcdUrl],
      ...["--advertise-client-urls", etcdUrl, "--listen-peer-urls", peerUrl],
      ...["--initial-advertise-peer-urls", peerUrl, "--initial-cluster", `test=${peerUrl}`],
      ...["--logger", "zap", "--log-level", "warn"],
    ],
    join(dir, "etcd.log"),
  );
  const health = async () => {
    try {
      const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) });
      return res.ok && ((await res.json()) as { health?: string }).health === "true";
    } catch {
      return false;
    }
  };
  await waitFor("etcd", etcd, 30_000, health);
  return { etcd, etcdUrl };
}

function apiserverArgs(dir: string, port: number, etcdUrl: string): string[] {
  const p = (file: string) => join(dir, file);
  return [
    ...["--etcd-servers", etcdUrl, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1"],
    ...[
      "--secure-port",
      String(port),
      "--tls-cert-file",
      p("apiserver.crt"),
      "--tls-private-key-file",
      p("apiserver.key"),
    ],
    ...["--client-ca-file", p("ca.crt"), "--authorization-mode", "RBAC", "--allow-privileged=true"],
    ...["--service-account-key-file", p("sa.pub"), "--service-account-signing-key-file", p("sa.key")],
    ...["--service-account-issuer", "https://kubernetes.default.svc.cluster.local"],
    ...["--service-cluster-ip-range", "10.0.0.0/24", "--endpoint-reconciler-type", "none"],
    // A webhook or aggregated API referenced by Service is dialled at its EndpointSlices'
    // addresses, never at a cluster IP (which would be routed out of the machine). No controller
    // makes EndpointSlices here (and they may not name loopback), so such calls fail at once with
    // "no endpoints available": tests register webhooks by URL (https://127.0.0.1:PORT/...).
    "--enable-aggregator-routing=true",
    // No controller-manager creates the "default" ServiceAccount of a namespace, so the
    // ServiceAccount admission plugin would refuse every pod (envtest disables it too).
    ...["--disable-admission-plugins", "ServiceAccount", "--enable-priority-and-fairness=false"],
    ...["--profiling=false", "--cert-dir", p("apiserver-certs"), "--v", "1"],
  ];
}

/**
 * Starts etcd and kube-apiserver and waits for /readyz. Callers skip first with
 * `missingK8sPeers()`; this throws (with the log's tail) when a process does not come up.
 */
export async function startCluster(): Promise<KubeCluster> {
  const dir = mkdtempSync(join(tmpdir(), "nsm-k8s-"));
  let etcd: Started | undefined;
  let apiserver: Started | undefined;
  const stop = async () => {
    if (apiserver) await stopProcess(apiserver);
    if (etcd) await stopProcess(etcd);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await makeCertificates(dir);
    const started = await startEtcd(dir);
    etcd = started.etcd;
    const port = await freePort();
    const server = `https://127.0.0.1:${port}`;
    apiserver = start(
      peerPath("kube-apiserver"),
      apiserverArgs(dir, port, started.etcdUrl),
      join(dir, "apiserver.log"),
    );
    const ready = async () => (await adminGet(server, dir, "/readyz")).status === 200;
    await waitFor("kube-apiserver", apiserver, 120_000, ready);
    const kubeconfigPath = join(dir, "admin.kubeconfig");
    writeFileSync(kubeconfigPath, kubeconfig(dir, server), { mode: 0o600 });
    const kubectl = (args: string[], options: KubectlOptions = {}) =>
      run(peerPath("kubectl"), ["--kubeconfig", kubeconfigPath, ...(options.as ? ["--as", options.as] : []), ...args], {
        input: options.input,
        env: localEnv(),
      });
    return {
      issueServingCertificate: (names: string[]) => issueServingCertificate(dir, names),
      kubeconfigPath,
      server,
      caPath: join(dir, "ca.crt"),
      clientCertPath: join(dir, "admin.crt"),
      clientKeyPath: join(dir, "admin.key"),
      etcdUrl: started.etcdUrl,
      dir,
      kubectl,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
