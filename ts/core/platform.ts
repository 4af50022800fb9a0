// Where the prebuilt native core of this platform is installed: napi-rs's platform names and
// the optional dependency `mpgit-<platform>` (the addon and mpgit-pack-hook) npm installs
// where its os/cpu/libc match.

import { createRequire } from 'node:module';
import { dirname } from 'node:path';

/** napi-rs's name for this platform: linux-x64-gnu, linux-arm64-musl, darwin-arm64, win32-x64-msvc. */
export function platformName(): string {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return `linux-${arch}-${header?.glibcVersionRuntime ? 'gnu' : 'musl'}`;
  }
  return platform === 'win32' ? `win32-${arch}-msvc` : `${platform}-${arch}`;
}

/** The installed platform package's directory, or null when npm did not install one. */
export function platformPackageDir(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve(`mpgit-${platformName()}/package.json`));
  } catch {
    return null;
  }
}
