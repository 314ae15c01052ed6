// SPDX-License-Identifier: Apache-2.0
/**
 * Pod volumes in the local runtime. At plan time a pod's volumes become {@link VolumeState}s
 * (the files of a ConfigMap, Secret or downwardAPI volume, an emptyDir, a host path); when the
 * pod starts they are written under `<state dir>/pods/<namespace>_<pod>/volumes/<volume>/`.
 *
 * A container with `volumeMounts` runs in a mount namespace of its own (`ip netns exec` enters
 * the pod's netns, `unshare --mount --propagation slave` makes a namespace whose mounts never
 * reach the host), through a shell script ({@link mountScript}) that builds the container's root:
 * a tmpfs mirroring every top-level entry of the host's `/` (recursive bind mounts), the volumes
 * bind-mounted at their `mountPath` (its symbolic links resolved as on the host, `/var/run` →
 * `/run`; a directory missing on the host is made on a tmpfs mirror of its nearest existing
 * parent, so nothing is created on the host), then `chroot` into it and
 * `exec` the container's command: the pid stays the command's. `nsm exec` enters the
 * container with `nsenter --mount --net --root --wd`.
 *
 * Written by hand: no library builds a bind-mount root for a host command.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DownwardItem, KeyToPath, Volume } from "./podspec.js";

/** A file of a volume: its relative path and content (base64). */
export interface VolumeFile {
  readonly path: string;
  readonly data: string;
}

/** A volume as a started pod holds it. */
export interface VolumeState {
  readonly name: string;
  /** `files`: written by the runtime (ConfigMap, Secret, downwardAPI); `emptyDir`; `hostPath`. */
  readonly type: "files" | "emptyDir" | "hostPath";
  readonly files?: readonly VolumeFile[];
  /** File mode of the files (Secrets 0644 like ConfigMaps, as Kubernetes' default). */
  readonly mode?: number;
  readonly hostPath?: string;
  /** `DirectoryOrCreate`/`FileOrCreate` make the host path at start. */
  readonly hostType?: string;
}

/** One mount of a container: which volume (and subPath), or which runtime file, at which path. */
export interface MountState {
  /** The volume's name; empty for a runtime file (`hostFile`). */
  readonly volume: string;
  /** A file of the runtime's mounted as is (the pod's resolv.conf, ./pod-files.ts), instead of a volume. */
  readonly hostFile?: string;
  readonly mountPath: string;
  readonly subPath?: string;
  readonly readOnly: boolean;
}

/** Where a pod's files live: `<state dir>/pods/<namespace>_<name>`. */
export function podDir(stateDir: string, namespace: string, name: string): string {
  return join(stateDir, "pods", `${namespace}_${name}`);
}

/** The host directory (or file) of a volume. */
export function volumeSourcePath(dir: string, v: VolumeState): string {
  return v.type === "hostPath" ? v.hostPath! : join(dir, "volumes", v.name);
}

/** The files of a ConfigMap/Secret volume: every key, or the `items` asked for. */
export function keyFiles(
  data: Readonly<Record<string, Buffer>>,
  items: readonly KeyToPath[] | undefined,
): VolumeFile[] {
  const chosen = items ?? Object.keys(data).map((key) => ({ key, path: key }));
  return chosen
    .filter((i) => data[i.key] !== undefined)
    .map((i) => ({ path: i.path, data: data[i.key]!.toString("base64") }));
}

/** `key="value"` lines, sorted, as the kubelet writes labels and annotations. */
function pairs(map: Readonly<Record<string, string>>): string {
  return Object.keys(map)
    .sort()
    .map((k) => `${k}=${JSON.stringify(map[k])}\n`)
    .join("");
}

/** The value of a downward-API field path (`metadata.labels`, `metadata.labels['app']`, `status.podIP`…). */
export function fieldValue(
  fieldPath: string,
  fields: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
  annotations: Readonly<Record<string, string>>,
): string {
  if (fieldPath === "metadata.labels") return pairs(labels);
  if (fieldPath === "metadata.annotations") return pairs(annotations);
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (m) return (m[1] === "labels" ? labels : annotations)[m[2]!] ?? "";
  return fields[fieldPath] ?? "";
}

/** The files of a downwardAPI volume. */
export function downwardFiles(items: readonly DownwardItem[], value: (fieldPath: string) => string): VolumeFile[] {
  return items.map((i) => ({ path: i.path, data: Buffer.from(value(i.fieldPath)).toString("base64") }));
}

/** Where the NSM socket directory of upstream manifests is on this node (see ./pods.ts). */
const NSM_SOCKET_HOST_DIR = "/var/lib/networkservicemesh";

/** A hostPath volume: the node's socket directory for upstream's NSM path, the host's path otherwise. */
export function hostPathVolume(v: Volume, nodeDir: string): VolumeState {
  if (v.source.type !== "hostPath") throw new Error("not a hostPath volume");
  const p = v.source.path.replace(/\/+$/, "") || "/";
  const mapped = p === NSM_SOCKET_HOST_DIR ? nodeDir : p;
  return { name: v.name, type: "hostPath", hostPath: mapped, hostType: v.source.hostType };
}

/** Writes a pod's volumes (files, emptyDirs, hostPaths to create) under its directory. */
export function writeVolumes(dir: string, volumes: readonly VolumeState[]): void {
  rmSync(join(dir, "volumes"), { recursive: true, force: true });
  for (const v of volumes) {
    const at = volumeSourcePath(dir, v);
    if (v.type === "hostPath") {
      if (v.hostType === "DirectoryOrCreate") mkdirSync(at, { recursive: true });
      if (v.hostType === "FileOrCreate" && !existsSync(at)) {
        mkdirSync(dirname(at), { recursive: true });
        writeFileSync(at, "");
      }
      continue;
    }
    mkdirSync(at, { recursive: true });
    for (const f of v.files ?? []) {
      const file = join(at, f.path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, Buffer.from(f.data, "base64"));
      chmodSync(file, v.mode ?? 0o644);
    }
  }
}

/** Whether any mount point of this (the CLI's) mount namespace lies under `dir`. */
function hasMountsUnder(dir: string): boolean {
  const prefix = `${dir.replace(/\/+$/, "")}/`;
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((l) => {
      const point = l.split(" ")[4];
      return point !== undefined && (point === dir || point.replace(/\\040/g, " ").startsWith(prefix));
    });
}

/**
 * Removes a pod's directory; never through a mount (the containers' mounts live in their own
 * namespaces, so there is none here unless something went wrong: then it is left, and false).
 */
export function removePodDir(dir: string): boolean {
  if (!existsSync(dir)) return true;
  if (hasMountsUnder(dir)) return false;
  rmSync(dir, { recursive: true, force: true });
  return true;
}

/** Single-quoted for sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The body of the mount script: functions, then one `place`+`bindmount` per mount. */
const SCRIPT_FUNCTIONS = `set -eu
ours() { case " $OURS " in *" $(stat -c %d "$1") "*) return 0;; esac; return 1; }
mirror_into() {
  for me in "\${1%/}"/* "\${1%/}"/.[!.]* "\${1%/}"/..?*; do
    [ -e "$me" ] || [ -L "$me" ] || continue
    mt="$2/\${me##*/}"
    if [ -L "$me" ]; then cp -P "$me" "$mt"
    elif [ -d "$me" ]; then mkdir "$mt"; mount --rbind "$me" "$mt"
    else : > "$mt"; mount --bind "$me" "$mt"; fi
  done
}
place() {
  t="$R$1"
  if [ -e "$t" ] || [ -L "$t" ]; then return 0; fi
  a=$(dirname "$t")
  while [ ! -e "$a" ]; do a=$(dirname "$a"); done
  if ! ours "$a"; then
    n=$((n+1)); s="$R.stage$n"
    mkdir -p "$s"; mount --rbind "$a" "$s"
    mount -t tmpfs -o "mode=$(stat -c %a "$s")" nsm-pod-dir "$a"
    OURS="$OURS $(stat -c %d "$a")"
    mirror_into "$s" "$a"
  fi
  if [ "$2" = d ]; then mkdir -p "$t"; else mkdir -p "$(dirname "$t")"; : > "$t"; fi
}
bindmount() {
  p=$(realpath -m "$2")
  if [ -d "$1" ]; then place "$p" d; else place "$p" f; fi
  mount --bind "$1" "$R$p"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$R$p"; fi
}
n=0
mkdir -p "$R"
mount -t tmpfs -o mode=0755 nsm-pod-root "$R"
OURS="$(stat -c %d "$R")"
mirror_into / "$R"
`;

/** One bind mount of the script: host `source` at `target` in the container. */
export interface BindMount {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

/**
 * The script that builds a container's root at `root` with `mounts`, then runs its command
 * (the script's arguments) there, in `workingDir` if given.
 */
export function mountScript(root: string, mounts: readonly BindMount[], workingDir?: string): string {
  const lines = [`R=${shQuote(root)}`, SCRIPT_FUNCTIONS.trimEnd()];
  for (const m of mounts) lines.push(`bindmount ${shQuote(m.source)} ${shQuote(m.target)} ${m.readOnly ? "ro" : "rw"}`);
  lines.push("cd /");
  if (workingDir) lines.push(`exec chroot "$R" /bin/sh -c 'cd "$0" && exec "$@"' ${shQuote(workingDir)} "$@"`);
  else lines.push(`exec chroot "$R" "$@"`);
  return `${lines.join("\n")}\n`;
}

/** The script's file and the container root it builds, for container `name` of the pod at `dir`. */
export function containerFiles(dir: string, name: string): { script: string; root: string } {
  return { script: join(dir, `${name}.mounts.sh`), root: join(dir, `${name}.root`) };
}

/** argv that runs `argv` through the mount script in a mount namespace of its own. */
export function mountedArgv(script: string, argv: readonly string[]): string[] {
  return ["unshare", "--mount", "--propagation", "slave", "sh", script, ...argv];
}

/** The bind mounts of a container: each volume (or its subPath) at its mountPath. */
export function bindMounts(dir: string, volumes: readonly VolumeState[], mounts: readonly MountState[]): BindMount[] {
  return mounts.map((m) => {
    if (m.hostFile) return { source: m.hostFile, target: m.mountPath, readOnly: m.readOnly };
    const v = volumes.find((x) => x.name === m.volume)!;
    const base = volumeSourcePath(dir, v);
    return { source: m.subPath ? join(base, m.subPath) : base, target: m.mountPath, readOnly: m.readOnly };
  });
}
