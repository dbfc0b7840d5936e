import type { Eui64, RemotePartyRoleCode, Signer } from '@smki/core';

/**
 * What a key is for. A meter holds separate trust anchors per purpose (docs/domain.md §2 "cells"): the
 * supplier's digital-signing certificate, its key-agreement certificate, and for prepayment
 * top-up a separate key-agreement certificate. The fourth purpose, `xmlSigning`, is the
 * organisation's DUIS XML signing key (Remote Party Role 135, digitalSignature): an organisation
 * key that no meter ever trusts or installs, used only through `KeyStore.xmlSigner`.
 */
export type KeyPurpose = 'signing' | 'keyAgreement' | 'prepaymentKeyAgreement' | 'xmlSigning';

/** The purposes a key-agreement key may have. */
export type KeyAgreementPurpose = 'keyAgreement' | 'prepaymentKeyAgreement';

/**
 * Every purpose, in a fixed order (new purposes are added at the end, so that the order of the
 * older ones never changes).
 */
export const KEY_PURPOSES: readonly KeyPurpose[] = Object.freeze(['signing', 'keyAgreement', 'prepaymentKeyAgreement', 'xmlSigning']);

/**
 * Lifecycle: `pending` (generated, no certificate) → `active` (certificate attached; usable) →
 * `retired` (no longer used), or `revoked` from any state (compromised: never used again).
 */
export type KeyState = 'pending' | 'active' | 'retired' | 'revoked';

declare const purposeBrand: unique symbol;

/**
 * A reference to one key, branded by purpose at the type level: a key-agreement handle cannot
 * be passed where a signing handle is wanted (a compile error), and the store checks it again at
 * run time.
 */
export interface KeyHandle<P extends KeyPurpose = KeyPurpose> {
  /** The key id. */
  readonly keyId: string;
  /** The key's purpose. */
  readonly purpose: P;
  /** Type-level brand. */
  readonly [purposeBrand]: P;
}

/** A handle to a digital-signing key. */
export type SigningKeyHandle = KeyHandle<'signing'>;
/** A handle to a key-agreement key (management or prepayment). */
export type KeyAgreementKeyHandle = KeyHandle<KeyAgreementPurpose>;
/**
 * A handle to an organisation's DUIS XML signing key (Remote Party Role 135). It is neither a
 * {@link SigningKeyHandle} nor a {@link KeyAgreementKeyHandle}: it never signs for a meter and never
 * agrees a key (a compile error, and refused again at run time).
 */
export type XmlSigningKeyHandle = KeyHandle<'xmlSigning'>;

/** An organisation (a User of the DCC): its entity id and Remote Party Role. */
export interface OrganisationInfo {
  /** EUI-64 entity id (the x500UniqueIdentifier of its certificates). */
  readonly entityId: Eui64;
  /** Remote Party Role (the OU of its certificates). */
  readonly role: RemotePartyRoleCode;
  /** Most devices one key may be trusted by (blast-radius cap), or undefined for no cap. */
  readonly maxDevicesPerKey?: number;
}

/** A portfolio: a set of devices with their own keys. */
export interface PortfolioInfo {
  /** The owning organisation. */
  readonly organisation: Eui64;
  /** Portfolio id, unique in the organisation. */
  readonly id: string;
  /** A display name. */
  readonly name: string;
  /**
   * Purposes for which this portfolio's key serves every device of the organisation (e.g. the
   * ACB's key-agreement key). Explicit, never a default.
   */
  readonly wholeEstate: readonly KeyPurpose[];
  /** The current key per purpose (the one new devices and credential updates get). */
  readonly current: Readonly<Partial<Record<KeyPurpose, string>>>;
  /** The devices assigned to it. */
  readonly devices: readonly Eui64[];
}

/** A key as the store knows it (never its private part). */
export interface KeyInfo {
  /** Key id (stable, unique in the store). */
  readonly keyId: string;
  /** The owning organisation. */
  readonly organisation: Eui64;
  /** The portfolio it belongs to. */
  readonly portfolioId: string;
  /** Its purpose. */
  readonly purpose: KeyPurpose;
  /** Generation within (portfolio, purpose), from 1. */
  readonly generation: number;
  /** Lifecycle state. */
  readonly state: KeyState;
  /** The backend kind holding it. */
  readonly backend: string;
  /** The backend's handle. */
  readonly handle: string;
  /** The public key, 65-byte uncompressed point as upper-case hex. */
  readonly publicKey: string;
  /** The attached certificate (PEM), once issued. */
  readonly certificate?: string;
  /** Its serial number (hex). */
  readonly serialNumber?: string;
  /** When the key was generated (ISO). */
  readonly createdAt: string;
  /** When it was revoked (ISO). */
  readonly revokedAt?: string;
}

/** A device as the store knows it. */
export interface DeviceInfo {
  /** The device's EUI-64. */
  readonly device: Eui64;
  /** The owning organisation. */
  readonly organisation: Eui64;
  /** The portfolio it is assigned to. */
  readonly portfolioId: string;
  /**
   * Per purpose, the key whose certificate the meter has installed as its trust anchor. It stays
   * until the meter's credentials are updated (a CS02b signed with the key it still trusts).
   * Never an `xmlSigning` key: no meter trusts one.
   */
  readonly installed: Readonly<Partial<Record<KeyPurpose, string>>>;
}

/** A meter whose credentials must be updated, and to which key. */
export interface CredentialUpdate {
  /** The device. */
  readonly device: Eui64;
  /** The purpose whose anchor changes. */
  readonly purpose: KeyPurpose;
  /** The key the meter trusts now (sign the update with this one). */
  readonly fromKeyId: string | undefined;
  /** The key it should trust. */
  readonly toKeyId: string;
}

/** Which devices a key endangers. */
export interface Exposure {
  /** The key. */
  readonly keyId: string;
  /** Its portfolio. */
  readonly portfolioId: string;
  /** Its purpose. */
  readonly purpose: KeyPurpose;
  /** Whether it serves the whole estate (then every device of the organisation). */
  readonly wholeEstate: boolean;
  /** Devices that trust it now (its certificate is installed), or every device for whole-estate keys. */
  readonly devices: readonly Eui64[];
}

/** What a use of a key is for, recorded in the audit trail. */
export interface UseContext {
  /** GBCS message code, e.g. 0x0050. */
  readonly messageCode?: number;
  /** The originator counter of the command. */
  readonly counter?: bigint;
}

/**
 * What a DUIS XML signature is for, recorded in the audit trail with the `xml-sign` use record.
 */
export interface XmlSignUse {
  /**
   * The DUIS RequestID of the signed request (e.g.
   * `90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000`): 1 to 128 of `A–Z a–z 0–9 . _ : @ / + -`.
   */
  readonly requestId?: string;
}

/**
 * Options of `KeyStore.xmlSigner`: which portfolio's key, when the organisation has more
 * than one current XML signing key, and a default use context for every signature.
 */
export interface XmlSignerOptions extends XmlSignUse {
  /** The portfolio whose current `xmlSigning` key signs; required when several portfolios have one. */
  readonly portfolioId?: string;
}

/**
 * An organisation's DUIS XML signer: a core `Signer` (ECDSA P-256/SHA-256, 64-byte `r ‖ s`) bound
 * to one `xmlSigning` key, with that key's certificate for the signature's KeyInfo. Every `sign`
 * checks again that the store is open and the key active (not retired, not revoked), and is
 * audited (`key.used`, operation `xml-sign`, no device).
 */
export interface XmlSigner extends Signer {
  /** The key id of the bound `xmlSigning` key. */
  readonly keyId: string;
  /** Its portfolio. */
  readonly portfolioId: string;
  /** The attached organisation certificate (role 135), DER: its issuer and serial go in KeyInfo. */
  readonly certificate: Uint8Array;
  /**
   * ECDSA P-256 over SHA-256 of `message`: the 64-byte `r ‖ s`. `use` (checked before the key is
   * used) replaces the signer's default request id for this signature.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (`message` not a Uint8Array, `use` not an object or its
   *   request id not an identifier), `ERR_KEYSTORE_CLOSED`, `ERR_KEY_NOT_FOUND`, `ERR_KEY_REVOKED`,
   *   `ERR_KEY_RETIRED`, `ERR_KEY_NOT_ACTIVE`
   */
  sign(message: Uint8Array, use?: XmlSignUse): Promise<Uint8Array>;
}
