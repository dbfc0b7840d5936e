// The trail replayed: the state every lifecycle record implies, built record by record, and each
// use record checked against it (the key a meter trusted at that point of the trail, active). What
// an auditor runs to know that every signature was made with the key its meter trusted, and what
// the store's tests run after processes raced on one database.
import type { AuditFinding, AuditRecord } from '../../audit.js';
import type { KeyPurpose, KeyState } from '../../types.js';

/** What the trail says of a key, and the record that last wrote its row. */
export interface ReplayedKey {
  readonly organisation: string;
  readonly portfolioId: string;
  readonly purpose: KeyPurpose;
  state: KeyState;
  rev: number;
}
/** What the trail says of a portfolio. */
export interface ReplayedPortfolio {
  readonly wholeEstate: readonly KeyPurpose[];
  readonly current: Partial<Record<KeyPurpose, string>>;
  rev: number;
}
/** What the trail says of a meter. */
export interface ReplayedDevice {
  portfolioId: string;
  readonly installed: Partial<Record<KeyPurpose, string>>;
  rev: number;
}
type Key = ReplayedKey;
type Portfolio = ReplayedPortfolio;
type Device = ReplayedDevice;

const DEVICE_PURPOSES: readonly KeyPurpose[] = ['signing', 'keyAgreement', 'prepaymentKeyAgreement'];
const MAX_FINDINGS = 1000;

/**
 * Replays a trail's records in order. `findings` lists every use of a key that was not, at that
 * point of the trail, the active key its meter trusted (or the whole-estate key), and every
 * lifecycle record the replayed state cannot explain.
 */
export class TrailReplay {
  readonly keys = new Map<string, Key>();
  readonly portfolios = new Map<string, Portfolio>();
  /** `organisation/device` */
  readonly devices = new Map<string, Device>();
  /** Organisations and the record that created them. */
  readonly organisations = new Map<string, number>();
  readonly findings: AuditFinding[] = [];
  /** The `store.migrated` record's seq (0: not migrated). */
  migratedAt = 0;
  /** Uses checked. */
  uses = 0;

  #add(r: AuditRecord, message: string): void {
    if (this.findings.length < MAX_FINDINGS) this.findings.push({ code: 'ERR_AUDIT_TAMPERED', message: `record ${r.seq} (${r.type}): ${message}`, seq: r.seq });
  }

  /**
   * Seed the state a migration carried over: the rows written with the `store.migrated` record
   * (those whose `rev` is its seq), as they were written then (their MACs were checked).
   */
  seed(state: { organisations?: Iterable<[string, number]>; keys: Iterable<[string, Key]>; portfolios: Iterable<[string, Portfolio]>; devices: Iterable<[string, Device]> }): void {
    for (const [k, v] of state.organisations ?? []) this.organisations.set(k, v);
    for (const [k, v] of state.keys) this.keys.set(k, v);
    for (const [k, v] of state.portfolios) this.portfolios.set(k, v);
    for (const [k, v] of state.devices) this.devices.set(k, v);
  }

  #estate(organisation: string, purpose: KeyPurpose): Portfolio | undefined {
    for (const [id, p] of this.portfolios) if (id.startsWith(`${organisation}/`) && p.wholeEstate.includes(purpose)) return p;
    return undefined;
  }

  apply(r: AuditRecord): void {
    switch (r.type) {
      case 'store.migrated':
        this.migratedAt = r.seq;
        return;
      case 'organisation.created':
        this.organisations.set(r.entityId, r.seq);
        return;
      case 'portfolio.created':
        this.portfolios.set(`${r.organisation}/${r.portfolioId}`, { wholeEstate: [...r.wholeEstate], current: {}, rev: r.seq });
        return;
      case 'key.generated':
        this.keys.set(r.keyId, { organisation: r.organisation, portfolioId: r.portfolioId, purpose: r.purpose, state: 'pending', rev: r.seq });
        return;
      case 'certificate.attached': {
        const k = this.keys.get(r.keyId);
        if (!k) return this.#add(r, `names key ${r.keyId}, which no record generated`);
        k.rev = r.seq;
        const p = this.portfolios.get(`${k.organisation}/${k.portfolioId}`);
        if (p && p.current[k.purpose] === undefined) {
          p.current[k.purpose] = r.keyId;
          p.rev = r.seq;
          k.state = 'active';
        }
        return;
      }
      case 'key.rotated': {
        const k = this.keys.get(r.toKeyId);
        const p = this.portfolios.get(`${r.organisation}/${r.portfolioId}`);
        if (!k || !p) return this.#add(r, `names key ${r.toKeyId} or portfolio ${r.portfolioId}, which no record made`);
        k.state = 'active';
        k.rev = r.seq;
        p.current[r.purpose] = r.toKeyId;
        p.rev = r.seq;
        return;
      }
      case 'key.retired':
      case 'key.revoked': {
        const k = this.keys.get(r.keyId);
        if (!k) return this.#add(r, `names key ${r.keyId}, which no record generated`);
        k.state = r.type === 'key.retired' ? 'retired' : 'revoked';
        k.rev = r.seq;
        const p = this.portfolios.get(`${k.organisation}/${k.portfolioId}`);
        if (p && p.current[k.purpose] === r.keyId) {
          delete p.current[k.purpose];
          p.rev = r.seq;
        }
        if (r.type === 'key.retired') {
          for (const d of this.devices.values()) if (d.installed[k.purpose] === r.keyId) this.#add(r, `retires key ${r.keyId} while a meter trusts it`);
        }
        return;
      }
      case 'device.assigned': {
        const p = this.portfolios.get(`${r.organisation}/${r.portfolioId}`);
        if (!p) return this.#add(r, `assigns to portfolio ${r.portfolioId}, which no record created`);
        const installed: Partial<Record<KeyPurpose, string>> = {};
        for (const purpose of DEVICE_PURPOSES) {
          if (this.#estate(r.organisation, purpose)) continue;
          const c = p.current[purpose];
          if (c !== undefined) installed[purpose] = c;
        }
        this.devices.set(`${r.organisation}/${r.device}`, { portfolioId: r.portfolioId, installed, rev: r.seq });
        return;
      }
      case 'device.moved': {
        const d = this.devices.get(`${r.organisation}/${r.device}`);
        if (!d) return this.#add(r, `moves device ${r.device}, which no record assigned`);
        d.portfolioId = r.toPortfolioId;
        d.rev = r.seq;
        return;
      }
      case 'device.credentials-updated': {
        const k = this.keys.get(r.keyId);
        const d = k && this.devices.get(`${k.organisation}/${r.device}`);
        if (!k || !d) return this.#add(r, `updates device ${r.device} to key ${r.keyId}, which the trail does not know`);
        d.installed[r.purpose] = r.keyId;
        d.rev = r.seq;
        return;
      }
      case 'key.used': {
        this.uses++;
        const k = this.keys.get(r.keyId);
        if (!k) return this.#add(r, `uses key ${r.keyId}, which no record generated`);
        if (k.state !== 'active') return this.#add(r, `uses key ${r.keyId} while it is ${k.state}`);
        if (r.operation === 'xml-sign') {
          if (k.purpose !== 'xmlSigning') this.#add(r, `signs XML with key ${r.keyId}, a ${k.purpose} key`);
          return;
        }
        const d = this.devices.get(`${k.organisation}/${String(r.device)}`);
        if (!d) return this.#add(r, `uses key ${r.keyId} for device ${String(r.device)}, which is in no portfolio`);
        const estate = this.#estate(k.organisation, k.purpose);
        const trusted = estate ? estate.current[k.purpose] : d.installed[k.purpose];
        if (trusted !== r.keyId) this.#add(r, `uses key ${r.keyId} for device ${String(r.device)}, which trusts ${trusted ?? 'no key'} for ${k.purpose}`);
        return;
      }
      default:
        return;
    }
  }
}
