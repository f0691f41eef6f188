// A TCP echo application in its own process, for tests through the mesh: every byte a connection sends comes
// back on it; a half-close is answered with one. Env: APP_HOST, APP_PORT.
import { createServer } from 'node:net';

const server = createServer({ allowHalfOpen: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.listen(Number(process.env.APP_PORT), process.env.APP_HOST, () => process.stdout.write('app listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
