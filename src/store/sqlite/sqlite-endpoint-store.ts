// The endpoint registry's table (migration 3) in the same SQLite file as the resources, on its own connection
// like SqliteCaStore (same WAL / synchronous=FULL / owner-only settings).
import type { SQLInputValue } from 'node:sqlite';
import type { EndpointKey, EndpointRecord, EndpointSource, EndpointStore } from '../endpoint-store.ts';
import { TableConnection } from './connection.ts';

const ORDER = 'ORDER BY mesh, virtual_node, instance';

function fromRow(row: Record<string, SQLInputValue>): EndpointRecord {
  return {
    mesh: String(row.mesh),
    virtualNode: String(row.virtual_node),
    instance: String(row.instance),
    address: String(row.address),
    port: Number(row.port),
    ports: JSON.parse(String(row.ports)) as number[],
    source: String(row.source) as EndpointSource,
    registeredAt: Number(row.registered_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
  };
}

export class SqliteEndpointStore implements EndpointStore {
  readonly path: string;
  readonly #conn: TableConnection;

  private constructor(conn: TableConnection) {
    this.path = conn.path;
    this.#conn = conn;
  }

  /** Opens (creating and migrating if needed) the store file at `path`, normally the resource store's keymesh.db. */
  static open(path: string): SqliteEndpointStore {
    return new SqliteEndpointStore(new TableConnection(path, 'the endpoint registry of the store'));
  }

  async putEndpoint(r: EndpointRecord): Promise<void> {
    this.#conn.write(() => this.#conn.stmt(
      `INSERT OR REPLACE INTO endpoints (mesh, virtual_node, instance, address, port, ports, source, registered_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(r.mesh, r.virtualNode, r.instance, r.address, r.port, JSON.stringify(r.ports), r.source, r.registeredAt, r.expiresAt));
  }

  async getEndpoint(k: EndpointKey): Promise<EndpointRecord | undefined> {
    return this.#conn.read(() => {
      const row = this.#conn.stmt('SELECT * FROM endpoints WHERE mesh = ? AND virtual_node = ? AND instance = ?').get(k.mesh, k.virtualNode, k.instance);
      return row ? fromRow(row) : undefined;
    });
  }

  async setEndpointExpiry(k: EndpointKey, expiresAt: number | null): Promise<boolean> {
    return this.#conn.write(() => Number(this.#conn.stmt('UPDATE endpoints SET expires_at = ? WHERE mesh = ? AND virtual_node = ? AND instance = ?')
      .run(expiresAt, k.mesh, k.virtualNode, k.instance).changes) > 0);
  }

  async deleteEndpoint(k: EndpointKey): Promise<EndpointRecord | undefined> {
    return this.#conn.write(() => {
      const row = this.#conn.stmt('DELETE FROM endpoints WHERE mesh = ? AND virtual_node = ? AND instance = ? RETURNING *').get(k.mesh, k.virtualNode, k.instance);
      return row ? fromRow(row) : undefined;
    });
  }

  async listEndpoints(filter: { mesh?: string } = {}): Promise<EndpointRecord[]> {
    return this.#conn.read(() => (filter.mesh === undefined
      ? this.#conn.stmt(`SELECT * FROM endpoints ${ORDER}`).all()
      : this.#conn.stmt(`SELECT * FROM endpoints WHERE mesh = ? ${ORDER}`).all(filter.mesh)).map(fromRow));
  }

  async deleteExpiredEndpoints(now: number): Promise<EndpointRecord[]> {
    return this.#conn.write(() => {
      const rows = this.#conn.stmt(`SELECT * FROM endpoints WHERE expires_at IS NOT NULL AND expires_at <= ? ${ORDER}`).all(now).map(fromRow);
      this.#conn.stmt('DELETE FROM endpoints WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now);
      return rows;
    });
  }

  async leaseConnectedEndpoints(expiresAt: number): Promise<number> {
    return this.#conn.write(() => Number(this.#conn.stmt("UPDATE endpoints SET expires_at = ? WHERE source = 'proxy' AND expires_at IS NULL").run(expiresAt).changes));
  }

  async close(): Promise<void> {
    this.#conn.close();
  }
}
