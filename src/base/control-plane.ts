/** The name the identity endpoint's certificate carries; workloads verify it (as TLS servername) whatever address they dial. */
export const CONTROL_PLANE_SERVER_NAME = 'keymesh-control-plane';
