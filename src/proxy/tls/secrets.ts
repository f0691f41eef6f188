// Envoy Secret resources received over SDS (protobufjs object form) as the proxy's TLS material: a
// certificate with its key (keymesh's managed certificates), or a validation context (trust bundles and CA
// trust with their CRLs). Inline data only: keymesh sends secrets inline; a file reference in an SDS secret
// is refused (it would name a file on the control plane's machine).
import { obj, optObj, Path, str, type Json } from '../resources/values.ts';
import type { SecretMaterial } from './material.ts';

function inline(v: unknown, path: Path): string {
  const o = obj(v, path);
  if (typeof o.inlineString === 'string') return o.inlineString;
  if (o.inlineBytes !== undefined) {
    const b = o.inlineBytes;
    return b instanceof Uint8Array ? Buffer.from(b).toString('utf8') : Buffer.from(str(b, path.at('inlineBytes')), 'base64').toString('utf8');
  }
  return path.fail('must be inline (inlineString or inlineBytes)');
}

export function compileSecret(resource: Json): SecretMaterial {
  const name = str(resource.name, new Path('secret'));
  const path = new Path(`secret ${name}`);
  for (const k of Object.keys(resource)) if (!['name', 'tlsCertificate', 'validationContext'].includes(k)) path.at(k).fail("is not supported by keymesh's proxy");
  const cert = optObj(resource.tlsCertificate, path.at('tlsCertificate'));
  const validation = optObj(resource.validationContext, path.at('validationContext'));
  if (cert && validation) path.fail('has both a certificate and a validation context');
  if (cert) {
    for (const k of Object.keys(cert)) if (!['certificateChain', 'privateKey'].includes(k)) path.at('tlsCertificate').at(k).fail("is not supported by keymesh's proxy");
    const chainPem = inline(cert.certificateChain, path.at('tlsCertificate.certificateChain'));
    const keyPem = inline(cert.privateKey, path.at('tlsCertificate.privateKey'));
    if (!chainPem.includes('-----BEGIN CERTIFICATE-----')) path.at('tlsCertificate.certificateChain').fail('holds no PEM certificate');
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) path.at('tlsCertificate.privateKey').fail('holds no PEM private key');
    return { kind: 'certificate', chainPem, keyPem };
  }
  if (validation) {
    for (const k of Object.keys(validation)) if (!['trustedCa', 'crl', 'onlyVerifyLeafCertCrl', 'matchTypedSubjectAltNames'].includes(k)) path.at('validationContext').at(k).fail("is not supported by keymesh's proxy");
    if (validation.matchTypedSubjectAltNames !== undefined) path.at('validationContext.matchTypedSubjectAltNames').fail('SAN matchers belong in the TLS context, not in the SDS secret');
    const trustedCaPem = inline(validation.trustedCa, path.at('validationContext.trustedCa'));
    if (!trustedCaPem.includes('-----BEGIN CERTIFICATE-----')) path.at('validationContext.trustedCa').fail('holds no PEM certificate');
    const crlPem = validation.crl === undefined ? undefined : inline(validation.crl, path.at('validationContext.crl'));
    if (crlPem !== undefined && validation.onlyVerifyLeafCertCrl !== true) path.at('validationContext.onlyVerifyLeafCertCrl').fail("keymesh's proxy checks CRLs for the leaf only; set onlyVerifyLeafCertCrl");
    return { kind: 'validation', trustedCaPem, crlPem };
  }
  return path.fail('needs tlsCertificate or validationContext');
}
