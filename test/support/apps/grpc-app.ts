// A gRPC application (@grpc/grpc-js, plaintext h2c) in its own process, for tests through the mesh. The
// service `keymesh.test.Echo` works on raw bytes (no .proto needed): Echo answers `<name>:<request>`; Fail
// ends with NOT_FOUND, its message and a trailer `x-reason`; Count streams back N messages for a request
// that holds the decimal N (at most 1000). Env: APP_NAME, APP_HOST, APP_PORT.
import * as grpc from '@grpc/grpc-js';
import { ECHO_SERVICE } from './grpc-echo-service.ts';

const name = process.env.APP_NAME ?? 'grpc';

const server = new grpc.Server();
server.addService(ECHO_SERVICE, {
  Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
    done(null, Buffer.concat([Buffer.from(`${name}:`), call.request]));
  },
  Fail: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
    const trailers = new grpc.Metadata();
    trailers.set('x-reason', `${name} refused ${call.request.toString('utf8')}`);
    done({ code: grpc.status.NOT_FOUND, details: `no such thing: ${call.request.toString('utf8')}`, metadata: trailers });
  },
  Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
    const n = Math.min(Number(call.request.toString('utf8')) || 0, 1000);
    for (let i = 1; i <= n; i++) call.write(Buffer.from(`${name}:${i}`));
    call.end();
  },
});
server.bindAsync(`${process.env.APP_HOST}:${process.env.APP_PORT}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write('app listening\n');
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
