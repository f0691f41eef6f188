// ACM-style ARNs for keymesh's CAs and managed certificates, so App Mesh specs can name them as they name
// ACM Private CA authorities and ACM certificates.

export function caArn(region: string, account: string, id: string): string {
  return `arn:aws:acm-pca:${region}:${account}:certificate-authority/${id}`;
}

export function certificateArn(region: string, account: string, id: string): string {
  return `arn:aws:acm:${region}:${account}:certificate/${id}`;
}

export function isCaArn(value: string): boolean {
  return /^arn:aws:acm-pca:[^:]*:\d{12}:certificate-authority\/[^/]+$/.test(value);
}
