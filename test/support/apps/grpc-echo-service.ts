// The raw-bytes gRPC service of grpc-app.ts, shared with the clients of the tests (no .proto: messages are
// the bytes themselves).
import type { ServiceDefinition } from '@grpc/grpc-js';

const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };

export const ECHO_SERVICE: ServiceDefinition = {
  Echo: { path: '/keymesh.test.Echo/Echo', requestStream: false, responseStream: false, originalName: 'echo', ...raw },
  Fail: { path: '/keymesh.test.Echo/Fail', requestStream: false, responseStream: false, originalName: 'fail', ...raw },
  Count: { path: '/keymesh.test.Echo/Count', requestStream: false, responseStream: true, originalName: 'count', ...raw },
};
