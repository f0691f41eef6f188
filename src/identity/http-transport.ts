// IdentityTransport over HTTPS to keymesh's identity endpoint. The endpoint is verified against the pinned
// control-plane CA under the name `keymesh-control-plane` (whatever address it is reached at); renewals
// present the current SVID as TLS client certificate. Refusals come back as the KeymeshErrors the server
// raised (same kind and code), so SvidSource can tell a spent token from an unreachable server.
import { request } from 'node:https';
import {
  BadRequestError, ConflictError, ForbiddenError, InternalError, KeymeshError, NotFoundError, UnavailableError,
} from '../errors/index.ts';
import { CONTROL_PLANE_SERVER_NAME } from '../base/control-plane.ts';
import type { SvidResponse } from './svid.ts';
import type { IdentityTransport } from './svid-source.ts';

const TIMEOUT_MS = 15_000;
const MAX_ANSWER = 256 * 1024;

export interface HttpTransportOptions {
  /** e.g. https://127.0.0.1:7443 */
  endpoint: string;
  /** The control-plane CA certificate (PEM) to verify the endpoint with. */
  caPem: string;
}

export class HttpIdentityTransport implements IdentityTransport {
  readonly #url: URL;
  readonly #caPem: string;

  constructor(options: HttpTransportOptions) {
    this.#url = new URL(options.endpoint);
    if (this.#url.protocol !== 'https:') throw new BadRequestError(`identity endpoint ${options.endpoint} must be an https:// URL`);
    this.#caPem = options.caPem;
  }

  bootstrap(csrPem: string, joinToken: string): Promise<SvidResponse> {
    return this.#post('/identity/v1/bootstrap', { joinToken, csr: csrPem });
  }

  renew(csrPem: string, current: { keyPem: string; certChainPem: string }): Promise<SvidResponse> {
    return this.#post('/identity/v1/renew', { csr: csrPem }, { key: current.keyPem, cert: current.certChainPem });
  }

  #post(path: string, body: unknown, client?: { key: string; cert: string }): Promise<SvidResponse> {
    const payload = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, this.#url), {
        method: 'POST',
        ca: this.#caPem,
        servername: CONTROL_PLANE_SERVER_NAME, // TLS checks the certificate against this name, not the address
        minVersion: 'TLSv1.2',
        ...(client ?? {}),
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
        timeout: TIMEOUT_MS,
        agent: false, // a new handshake each time: the client certificate changes with every renewal
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER) req.destroy(new UnavailableError(`the identity endpoint answered more than ${MAX_ANSWER} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            return reject(new UnavailableError(`the identity endpoint answered HTTP ${res.statusCode} without JSON`));
          }
          if (res.statusCode === 200) resolve(json as SvidResponse);
          else reject(errorFrom(res.statusCode ?? 0, json as { message?: string; code?: string }));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new UnavailableError(`the identity endpoint ${this.#url.origin} did not answer within ${TIMEOUT_MS / 1000}s`)));
      req.on('error', (e) => reject(e instanceof KeymeshError ? e : new UnavailableError(`cannot reach the identity endpoint ${this.#url.origin}: ${e.message}`, { cause: e })));
      req.end(payload);
    });
  }
}

function errorFrom(status: number, body: { message?: string; code?: string }): KeymeshError {
  const message = body.message ?? `HTTP ${status}`;
  const code = body.code ?? 'KM_ERR_REMOTE';
  if (status === 403) return new ForbiddenError(message, code);
  if (status === 404) return new NotFoundError(message, code);
  if (status === 409) return new ConflictError(message, code);
  if (status >= 400 && status < 500) return new BadRequestError(message, code);
  if (status === 503 || status === 502 || status === 504) return new UnavailableError(message);
  return new InternalError(`identity endpoint failed (HTTP ${status}): ${message}`);
}
