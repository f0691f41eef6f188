// The parts of App Mesh specs the translation reads, as TypeScript types over the stored JSON (the API layer
// validated them against the model, so a spec is read, never re-checked, here).
import type { JsonObject } from '../model/json.ts';

export type Protocol = 'http' | 'http2' | 'grpc' | 'tcp';
export interface PortMapping { port: number; protocol: Protocol }
export interface Duration { unit?: 's' | 'ms'; value?: number }

export interface FileCertificate { certificateChain: string; privateKey: string }
export interface SdsRef { secretName: string }
export interface ListenerCertificate { file?: FileCertificate; sds?: SdsRef; acm?: { certificateArn: string } }
export interface Trust { file?: { certificateChain: string }; sds?: SdsRef; acm?: { certificateAuthorityArns: string[] } }
export interface SubjectAlternativeNames { match: { exact: string[] } }
export interface ValidationContext { trust: Trust; subjectAlternativeNames?: SubjectAlternativeNames }
export interface ListenerTls { mode: 'STRICT' | 'PERMISSIVE' | 'DISABLED'; certificate: ListenerCertificate; validation?: ValidationContext }
export interface ClientPolicyTls { enforce?: boolean; ports?: number[]; certificate?: { file?: FileCertificate; sds?: SdsRef }; validation: ValidationContext }
export interface ClientPolicy { tls?: ClientPolicyTls }

export interface HealthCheck {
  protocol: Protocol; path?: string; port?: number;
  healthyThreshold: number; unhealthyThreshold: number; timeoutMillis: number; intervalMillis: number;
}
export interface Timeouts { idle?: Duration; perRequest?: Duration }
/** A listener's connection pool: a union keyed by the listener's protocol (tcp only on virtual nodes). */
export interface ConnectionPool {
  http?: { maxConnections: number; maxPendingRequests?: number };
  http2?: { maxRequests: number };
  grpc?: { maxRequests: number };
  tcp?: { maxConnections: number };
}
export interface OutlierDetection { maxServerErrors: number; interval: Duration; baseEjectionDuration: Duration; maxEjectionPercent: number }
export interface NodeListener {
  portMapping: PortMapping;
  tls?: ListenerTls;
  healthCheck?: HealthCheck;
  timeout?: Partial<Record<Protocol, Timeouts>>;
  connectionPool?: ConnectionPool;
  outlierDetection?: OutlierDetection;
}
export interface AccessLogging { accessLog?: { file?: { path: string; format?: { text?: string; json?: { key: string; value: string }[] } } } }
export interface VirtualNodeSpec {
  listeners?: NodeListener[];
  backends?: { virtualService?: { virtualServiceName: string; clientPolicy?: ClientPolicy } }[];
  backendDefaults?: { clientPolicy?: ClientPolicy };
  serviceDiscovery?: { dns?: { hostname: string; responseType?: 'LOADBALANCER' | 'ENDPOINTS'; ipPreference?: string }; awsCloudMap?: { namespaceName: string; serviceName: string } };
  logging?: AccessLogging;
}
export interface VirtualServiceSpec { provider?: { virtualNode?: { virtualNodeName: string }; virtualRouter?: { virtualRouterName: string } } }
export interface VirtualRouterSpec { listeners?: { portMapping: PortMapping }[] }

export interface MatchRange { start: number; end: number }
export interface HeaderMatch { exact?: string; prefix?: string; suffix?: string; regex?: string; range?: MatchRange }
export interface HeaderMatcherSpec { name: string; invert?: boolean; match?: HeaderMatch }
export interface QueryParameterSpec { name: string; match?: { exact?: string } }
export interface HttpMatch {
  prefix?: string; path?: { exact?: string; regex?: string }; headers?: HeaderMatcherSpec[]; method?: string;
  queryParameters?: QueryParameterSpec[]; scheme?: string; port?: number;
  hostname?: { exact?: string; suffix?: string };
}
export interface GrpcMatch { serviceName?: string; methodName?: string; metadata?: HeaderMatcherSpec[]; port?: number; hostname?: { exact?: string; suffix?: string } }
export interface WeightedTarget { virtualNode: string; weight: number; port?: number }
export interface RetryPolicy { maxRetries: number; perRetryTimeout: Duration; httpRetryEvents?: string[]; tcpRetryEvents?: string[]; grpcRetryEvents?: string[] }
export interface HttpRouteSpec { match: HttpMatch; action: { weightedTargets: WeightedTarget[] }; retryPolicy?: RetryPolicy; timeout?: Timeouts }
export interface GrpcRouteSpec { match: GrpcMatch; action: { weightedTargets: WeightedTarget[] }; retryPolicy?: RetryPolicy; timeout?: Timeouts }
export interface TcpRouteSpec { match?: { port?: number }; action: { weightedTargets: WeightedTarget[] }; timeout?: Timeouts }
export interface RouteSpec { priority?: number; httpRoute?: HttpRouteSpec; http2Route?: HttpRouteSpec; grpcRoute?: GrpcRouteSpec; tcpRoute?: TcpRouteSpec }

export interface GatewayListener { portMapping: PortMapping; tls?: ListenerTls; healthCheck?: HealthCheck; connectionPool?: ConnectionPool }
export interface VirtualGatewaySpec { listeners: GatewayListener[]; backendDefaults?: { clientPolicy?: ClientPolicy }; logging?: AccessLogging }
export interface GatewayTarget { virtualService: { virtualServiceName: string }; port?: number }
export interface GatewayRewrite {
  hostname?: { defaultTargetHostname?: 'ENABLED' | 'DISABLED' };
  prefix?: { defaultPrefix?: 'ENABLED' | 'DISABLED'; value?: string };
  path?: { exact?: string };
}
export interface GatewayRouteSpec {
  priority?: number;
  httpRoute?: { match: HttpMatch; action: { target: GatewayTarget; rewrite?: GatewayRewrite } };
  http2Route?: { match: HttpMatch; action: { target: GatewayTarget; rewrite?: GatewayRewrite } };
  grpcRoute?: { match: GrpcMatch; action: { target: GatewayTarget; rewrite?: GatewayRewrite } };
}
export interface MeshSpec { egressFilter?: { type: 'ALLOW_ALL' | 'DROP_ALL' }; serviceDiscovery?: { ipPreference?: string } }

/** Reads a stored spec as the typed shape (specs are validated against the App Mesh model on write). */
export function specAs<T>(spec: JsonObject): T {
  return spec as unknown as T;
}
