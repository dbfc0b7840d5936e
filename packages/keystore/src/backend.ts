/**
 * The one interface every key backend implements: memory, encrypted files, PKCS#11. A backend
 * holds private keys and performs the two operations SMKI needs with them; it knows nothing of
 * organisations, portfolios or purposes (the {@link KeyStore} decides who may use which key).
 * @module
 */

/** What a backend returns for a key it generated. */
export interface GeneratedKey {
  /** The backend's reference to the key (a file name, a PKCS#11 object id): never secret. */
  readonly handle: string;
  /** The public key: 65-byte uncompressed P-256 point. */
  readonly publicKey: Uint8Array;
}

/** Where a new key goes and how it is labelled (a PKCS#11 label; a file name stem). */
export interface KeySpec {
  /** The store's key id (unique, stable). */
  readonly keyId: string;
  /** A label naming organisation, portfolio, purpose and generation, e.g. `90B3D51F30010000/north/DS/g2`. */
  readonly label: string;
}

/**
 * A key backend. Keys are NIST P-256, generated inside the backend; private key material never
 * leaves it through this interface.
 */
export interface KeyBackend {
  /** `memory`, `file` or `pkcs11`. */
  readonly kind: string;
  /** Generate a P-256 key pair inside the backend. Durable when the promise resolves. */
  generateKey(spec: KeySpec): Promise<GeneratedKey>;
  /** ECDSA P-256 over SHA-256 of `message`; 64-byte `r ‖ s`. */
  sign(handle: string, message: Uint8Array): Promise<Uint8Array>;
  /** ECDH with `peerPublicKey` (65-byte point); the 32-byte x-coordinate Z. */
  deriveSharedSecret(handle: string, peerPublicKey: Uint8Array): Promise<Uint8Array>;
  /** The public key of a key the backend holds. */
  publicKey(handle: string): Promise<Uint8Array>;
  /** Every handle the backend holds (used to find keys a crash left without metadata). */
  listHandles(): Promise<string[]>;
  /** Destroy a key (revocation with destruction, or clean-up of an orphan). */
  destroyKey(handle: string): Promise<void>;
  /** Release resources (sessions, cached keys). */
  close(): Promise<void>;
}
