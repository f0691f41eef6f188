// The Node upstream app (--app node): `node app-server.ts <port> <bodyBytes>`. Keep-alive, no request limit
// per connection, every request answered 200 with the same body.
import { createServer } from 'node:http';
import { appBody } from './app.ts';

const port = Number(process.argv[2]);
const body = Buffer.from(appBody(Number(process.argv[3] ?? 3)));
const server = createServer({ keepAliveTimeout: 75_000 }, (req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
