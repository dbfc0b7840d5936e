import { AsnProp, AsnPropTypes } from '@peculiar/asn1-schema';

/**
 * RFC 4108 §5:
 * ```asn1
 * HardwareModuleName ::= SEQUENCE {
 *   hwType       OBJECT IDENTIFIER,
 *   hwSerialNum  OCTET STRING }
 * ```
 * Carried in a device certificate's subjectAltName as otherName id-on-hardwareModuleName
 * (1.3.6.1.5.5.7.8.4); hwSerialNum is the device's 8-octet EUI-64 (docs/domain.md §2).
 */
export class HardwareModuleNameAsn {
  @AsnProp({ type: AsnPropTypes.ObjectIdentifier })
  hwType = '';

  @AsnProp({ type: AsnPropTypes.OctetString })
  hwSerialNum: ArrayBuffer = new ArrayBuffer(0);

  constructor(params: Partial<HardwareModuleNameAsn> = {}) {
    Object.assign(this, params);
  }
}
