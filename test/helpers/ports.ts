import { createServer } from "node:net";

/**
 * A TCP port that was free on 127.0.0.1 a moment ago.
 *
 * Tests need the gate's port before the gate starts: the provider must have the gate's
 * redirect_uri (built from the gate's own URL) registered when it starts. There is a small race
 * (another process could take the port in between), which is acceptable on a test machine.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("freePort: listening socket has no TCP address"));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
