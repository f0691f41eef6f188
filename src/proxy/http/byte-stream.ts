// What the HTTP/1.1 forwarding code asks of a connection, either side: a net.Socket, a TLS socket, or a virtual
// connection of keymesh's multiplexed hop (mux/stream.ts) all are one. Events: 'data' (a Buffer), 'end',
// 'close', 'drain', 'error' — as a socket's.
type Listener = (...args: any[]) => void;

export interface ByteStream {
  on(event: string, listener: Listener): this;
  once(event: string, listener: Listener): this;
  off(event: string, listener: Listener): this;
  write(chunk: Buffer | string): boolean;
  /** Writes between cork() and uncork() leave together (a socket: one write; a mux stream: always per turn). */
  cork(): void;
  uncork(): void;
  end(): this;
  destroy(): this;
  pause(): this;
  resume(): this;
  readonly destroyed: boolean;
  readonly writable: boolean;
  readonly writableLength: number;
}
