// An HTTP/2 application (h2c, prior knowledge) in its own process, for tests through the mesh: every stream is
// answered with JSON naming the app, the method, the path, the :authority it saw and the request body's size
// and SHA-256, followed by a trailer `x-app-trailer: <name>`. Env: APP_NAME, APP_HOST, APP_PORT.
import { createHash } from 'node:crypto';
import { createServer, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';

const name = process.env.APP_NAME ?? 'h2';
let served = 0;

const server = createServer();
server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('error', () => {});
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    served++;
    const answer = JSON.stringify({
      app: name, method: headers[':method'], path: headers[':path'], authority: headers[':authority'],
      bytes: body.length, sha256: createHash('sha256').update(body).digest('hex'), served,
    });
    stream.respond({ ':status': 200, 'content-type': 'application/json' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'x-app-trailer': name }));
    stream.end(answer);
  });
});
server.listen(Number(process.env.APP_PORT), process.env.APP_HOST, () => process.stdout.write('app listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
