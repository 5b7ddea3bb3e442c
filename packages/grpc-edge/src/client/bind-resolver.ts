/*
 * Source-address binding for gRPC channels. grpc-js has no channel option for it (docs/design.md);
 * what works is a resolver that returns the endpoint address with a `localAddress`, which
 * grpc-js hands to net.connect. Target: `vmferry-bind:HOST:PORT`, with the local address in
 * the channel option LOCAL_ADDRESS_OPTION. Binding the source IP picks the interface through
 * routing; on a real host, add policy routing (`ip rule from SRC table …`) to pin it.
 */
import * as grpc from '@grpc/grpc-js';

export const BIND_SCHEME = 'vmferry-bind';
export const LOCAL_ADDRESS_OPTION = 'vmferry.local_address';

type ResolverListener = grpc.experimental.ResolverListener;
type Target = { path: string };

class BindResolver implements grpc.experimental.Resolver {
  private reported = false;
  private readonly endpoint: { host: string; port: number; localAddress?: string } | undefined;

  constructor(
    target: Target,
    private readonly listener: ResolverListener,
    options: grpc.ChannelOptions,
  ) {
    const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(target.path);
    const local = options[LOCAL_ADDRESS_OPTION] as string | undefined;
    this.endpoint = m ? { host: m[1] as string, port: Number(m[2]), ...(local ? { localAddress: local } : {}) } : undefined;
  }

  updateResolution(): void {
    // Report once per resolution cycle (reset by destroy), or a failed connect spins the loop.
    if (this.reported) return;
    this.reported = true;
    process.nextTick(() => {
      if (!this.endpoint) {
        this.listener(
          grpc.experimental.statusOrFromError({ code: grpc.status.UNAVAILABLE, details: 'bad vmferry-bind target: expected HOST:PORT' }),
          {},
          null,
          '',
        );
        return;
      }
      this.listener(grpc.experimental.statusOrFromValue([{ addresses: [this.endpoint] }]), {}, null, '');
    });
  }

  destroy(): void {
    this.reported = false;
  }

  static getDefaultAuthority(target: Target): string {
    return target.path;
  }
}

let registered = false;

/** The channel target and options that make a channel connect from `localAddress`. */
export function boundTarget(address: string, localAddress?: string): { target: string; options: grpc.ChannelOptions } {
  if (!registered) {
    grpc.experimental.registerResolver(BIND_SCHEME, BindResolver);
    registered = true;
  }
  return { target: `${BIND_SCHEME}:${address}`, options: localAddress ? { [LOCAL_ADDRESS_OPTION]: localAddress } : {} };
}
