// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata polyfill loaded
// before the library itself, and it signs with whatever WebCrypto it is given. Every pki module takes `x509`
// from here, so both happen once and in that order.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

// Node's webcrypto is the standard Crypto; the library types it with the DOM's declaration.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export const subtle = webcrypto.subtle;
