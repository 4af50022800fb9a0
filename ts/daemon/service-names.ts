// The git:// services the daemon knows, apart from the settings table (./config.ts, which
// needs zod): `mpgit --help` lists them without loading it.

export const SERVICE_NAMES = ['upload-pack', 'upload-archive', 'receive-pack'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];
