// An independent implementation of the DUIS XML signature profile, on the JDK alone
// (javax.xml.crypto.dsig, javax.xml.parsers, java.security), for the interoperability tests of
// packages/duis. It shares no code with the TypeScript implementation.
//
//   java DuisXmlSig sign <in.xml> <key.pk8.pem> <cert.pem>     signed document on stdout, compact
//   java DuisXmlSig sign-pretty <in.xml> <key.pk8.pem> <cert.pem>   the same, indented
//   java DuisXmlSig verify <in.xml> <cert.pem>                 VALID (exit 0) or INVALID <reason> (exit 1)
//   java DuisXmlSig verify-batch <cert.pem> <file>...          one line per file, in order:
//                                                              VALID|INVALID <reason>|ERROR <message>, a tab, the file
//
// <in.xml> may be "-" for standard input. Exit 2: usage, I/O or parse error (message on stderr;
// verify-batch: 2 if any file could not be read or parsed, else 1 if any is invalid, else 0).
//
// Output form: UTF-8, NO XML declaration, no trailing newline (sign-pretty ends with one newline).
// Compact output has no white space between tags; the SignatureValue is one unbroken base64 line.
// On each element the namespace declarations come first, then the other attributes, each group in
// the parser's order (the JDK's DOM keeps attributes sorted by qualified name). Of the JDK's own
// output two things are undone, neither inside a digest: it declares xmlns:ds on the Signature
// even when the root already does, and it wraps the SignatureValue base64 at 76 with CR LF.
//
// The profile:
// - root sr:Request or sr:Response in http://www.dccinterface.co.uk/ServiceUserGateway;
// - exactly one ds:Signature, the last child element of the root, all its elements prefixed ds;
//   it declares xmlns:ds itself only when the root does not already;
// - SignedInfo: exclusive C14N (no InclusiveNamespaces), ECDSA-SHA256 on P-256, one Reference
//   URI="" with exactly the enveloped-signature transform (so the document is digested under
//   inclusive C14N 1.0 without comments), SHA-256 digest;
// - the document is signed and verified with white-space-only text nodes removed wherever their
//   parent element also has element children (element-content white space); white space that is
//   an element's whole value is kept;
// - SignatureValue: raw r||s, 64 bytes, base64 (white space inside is accepted when verifying);
// - KeyInfo: exactly X509Data/X509IssuerSerial, the issuer name in RFC 2253 form (no spaces
//   after the commas) and the serial number in decimal; verify requires the name to be exactly
//   X500Principal.getName(RFC2253) of itself, then equal (as an X500Principal) to the given
//   certificate's issuer, and the serial number equal as an integer;
// - a DOCTYPE is refused.

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.StringReader;
import java.io.Writer;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.AlgorithmParameters;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.security.auth.x500.X500Principal;
import javax.xml.XMLConstants;
import javax.xml.crypto.dsig.CanonicalizationMethod;
import javax.xml.crypto.dsig.DigestMethod;
import javax.xml.crypto.dsig.Reference;
import javax.xml.crypto.dsig.SignatureMethod;
import javax.xml.crypto.dsig.SignedInfo;
import javax.xml.crypto.dsig.Transform;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMSignContext;
import javax.xml.crypto.dsig.dom.DOMValidateContext;
import javax.xml.crypto.dsig.keyinfo.KeyInfo;
import javax.xml.crypto.dsig.keyinfo.KeyInfoFactory;
import javax.xml.crypto.dsig.keyinfo.X509Data;
import javax.xml.crypto.dsig.keyinfo.X509IssuerSerial;
import javax.xml.crypto.dsig.spec.C14NMethodParameterSpec;
import javax.xml.crypto.dsig.spec.ExcC14NParameterSpec;
import javax.xml.crypto.dsig.spec.TransformParameterSpec;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Attr;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NamedNodeMap;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;
import org.xml.sax.ErrorHandler;
import org.xml.sax.InputSource;
import org.xml.sax.SAXParseException;

public class DuisXmlSig {
  static final String SR = "http://www.dccinterface.co.uk/ServiceUserGateway";
  static final String DS = XMLSignature.XMLNS; // http://www.w3.org/2000/09/xmldsig#
  static final String XMLNS = XMLConstants.XMLNS_ATTRIBUTE_NS_URI;
  static final String EXC_C14N = CanonicalizationMethod.EXCLUSIVE; // http://www.w3.org/2001/10/xml-exc-c14n#
  static final String ECDSA_SHA256 = SignatureMethod.ECDSA_SHA256; // http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256
  static final String ENVELOPED = Transform.ENVELOPED; // http://www.w3.org/2000/09/xmldsig#enveloped-signature
  static final String SHA256 = DigestMethod.SHA256; // http://www.w3.org/2001/04/xmlenc#sha256

  /** Usage, I/O and parse errors: exit 2. */
  static final class Fatal extends Exception {
    private static final long serialVersionUID = 1L;

    Fatal(String message) {
      super(message);
    }
  }

  /** A document that breaks the profile or does not verify: INVALID, exit 1. */
  static final class Invalid extends Exception {
    private static final long serialVersionUID = 1L;

    Invalid(String message) {
      super(message);
    }
  }

  public static void main(String[] args) {
    int status;
    try {
      status = run(args);
    } catch (Fatal e) {
      System.err.println("error: " + e.getMessage());
      status = 2;
    } catch (Exception e) {
      System.err.println("error: " + e);
      status = 2;
    }
    System.out.flush();
    System.exit(status);
  }

  static final String USAGE =
      "usage: DuisXmlSig sign|sign-pretty <in.xml|-> <key.pk8.pem> <cert.pem>\n"
          + "       DuisXmlSig verify <in.xml|-> <cert.pem>\n"
          + "       DuisXmlSig verify-batch <cert.pem> <file>...";

  static int run(String[] args) throws Exception {
    if (args.length == 0) throw new Fatal("no command\n" + USAGE);
    switch (args[0]) {
      case "sign":
      case "sign-pretty": {
        if (args.length != 4) throw new Fatal("wrong number of arguments\n" + USAGE);
        Document doc = parse(readInput(args[1]));
        PrivateKey key = readPrivateKey(args[2]);
        X509Certificate cert = readCertificate(args[3]);
        sign(doc, key, cert);
        writeUtf8(System.out, serialize(doc, args[0].equals("sign-pretty")));
        return 0;
      }
      case "verify": {
        if (args.length != 3) throw new Fatal("wrong number of arguments\n" + USAGE);
        Document doc = parse(readInput(args[1]));
        X509Certificate cert = readCertificate(args[2]);
        try {
          verify(doc, cert);
          System.out.println("VALID");
          return 0;
        } catch (Invalid e) {
          System.out.println("INVALID " + oneLine(e.getMessage()));
          return 1;
        }
      }
      case "verify-batch": {
        if (args.length < 2) throw new Fatal("wrong number of arguments\n" + USAGE);
        X509Certificate cert = readCertificate(args[1]);
        int worst = 0;
        for (int i = 2; i < args.length; i++) {
          String line;
          try {
            verify(parse(readInput(args[i])), cert);
            line = "VALID";
          } catch (Invalid e) {
            line = "INVALID " + oneLine(e.getMessage());
            worst = Math.max(worst, 1);
          } catch (Exception e) {
            line = "ERROR " + oneLine(e instanceof Fatal ? e.getMessage() : e.toString());
            worst = 2;
          }
          System.out.println(line + "\t" + args[i]);
        }
        return worst;
      }
      default:
        throw new Fatal("unknown command " + args[0] + "\n" + USAGE);
    }
  }

  static String oneLine(String s) {
    return String.valueOf(s).replaceAll("[\\t\\r\\n]+", " ").trim();
  }

  // ---------------------------------------------------------------- input

  static byte[] readInput(String path) throws Fatal {
    try {
      return path.equals("-") ? System.in.readAllBytes() : Files.readAllBytes(Paths.get(path));
    } catch (IOException e) {
      throw new Fatal("cannot read " + path + ": " + e.getMessage());
    }
  }

  /** Namespace-aware, DOCTYPE refused, no external access, comments and CDATA kept as nodes. */
  static Document parse(byte[] bytes) throws Fatal {
    try {
      DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
      f.setNamespaceAware(true);
      f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
      f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
      f.setFeature("http://xml.org/sax/features/external-general-entities", false);
      f.setFeature("http://xml.org/sax/features/external-parameter-entities", false);
      f.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
      f.setAttribute(XMLConstants.ACCESS_EXTERNAL_DTD, "");
      f.setAttribute(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "");
      f.setXIncludeAware(false);
      f.setExpandEntityReferences(false);
      f.setValidating(false);
      f.setCoalescing(false);
      f.setIgnoringComments(false);
      DocumentBuilder b = f.newDocumentBuilder();
      b.setErrorHandler(
          new ErrorHandler() {
            public void warning(SAXParseException e) {}

            public void error(SAXParseException e) throws SAXParseException {
              throw e;
            }

            public void fatalError(SAXParseException e) throws SAXParseException {
              throw e;
            }
          });
      b.setEntityResolver((publicId, systemId) -> new InputSource(new StringReader("")));
      return b.parse(new java.io.ByteArrayInputStream(bytes));
    } catch (SAXParseException e) {
      throw new Fatal("XML parse error (line " + e.getLineNumber() + "): " + e.getMessage());
    } catch (Exception e) {
      throw new Fatal("XML parse error: " + e.getMessage());
    }
  }

  static byte[] pemBody(String text, String label, String path) throws Fatal {
    Matcher m =
        Pattern.compile("-----BEGIN " + label + "-----([A-Za-z0-9+/=\\s]+)-----END " + label + "-----")
            .matcher(text);
    if (!m.find()) throw new Fatal(path + ": no PEM block \"" + label + "\" (a PKCS#8 key is needed)");
    return Base64.getMimeDecoder().decode(m.group(1));
  }

  static PrivateKey readPrivateKey(String path) throws Fatal {
    try {
      String text = new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.US_ASCII);
      PrivateKey key = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(pemBody(text, "PRIVATE KEY", path)));
      requireP256(key, path);
      return key;
    } catch (Fatal e) {
      throw e;
    } catch (Exception e) {
      throw new Fatal("cannot read the private key " + path + ": " + e);
    }
  }

  static X509Certificate readCertificate(String path) throws Fatal {
    try (InputStream in = Files.newInputStream(Paths.get(path))) {
      X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
      requireP256(cert.getPublicKey(), path);
      return cert;
    } catch (Fatal e) {
      throw e;
    } catch (Exception e) {
      throw new Fatal("cannot read the certificate " + path + ": " + e);
    }
  }

  static ECParameterSpec p256;

  static void requireP256(Object key, String path) throws Exception {
    if (p256 == null) {
      AlgorithmParameters ap = AlgorithmParameters.getInstance("EC");
      ap.init(new ECGenParameterSpec("secp256r1"));
      p256 = ap.getParameterSpec(ECParameterSpec.class);
    }
    if (!(key instanceof ECKey)) throw new Fatal(path + ": not an EC key");
    ECParameterSpec p = ((ECKey) key).getParams();
    if (!p.getCurve().equals(p256.getCurve())
        || !p.getGenerator().equals(p256.getGenerator())
        || !p.getOrder().equals(p256.getOrder())) {
      throw new Fatal(path + ": the key is not on P-256");
    }
  }

  // ---------------------------------------------------------------- white space

  static boolean isXmlSpace(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
    }
    return true;
  }

  static boolean hasElementChild(Node n) {
    for (Node c = n.getFirstChild(); c != null; c = c.getNextSibling()) {
      if (c.getNodeType() == Node.ELEMENT_NODE) return true;
    }
    return false;
  }

  /**
   * Removes the white-space-only text nodes of every element that also has element children.
   * Adjacent text nodes are merged first, so a text node is judged whole. CDATA sections are
   * not text nodes here and are kept.
   */
  static void stripElementContentWhitespace(Element e) {
    e.normalize();
    stripRec(e);
  }

  private static void stripRec(Element e) {
    boolean elementContent = hasElementChild(e);
    Node c = e.getFirstChild();
    while (c != null) {
      Node next = c.getNextSibling();
      if (c.getNodeType() == Node.ELEMENT_NODE) {
        stripRec((Element) c);
      } else if (elementContent && c.getNodeType() == Node.TEXT_NODE && isXmlSpace(c.getNodeValue())) {
        e.removeChild(c);
      }
      c = next;
    }
  }

  // ---------------------------------------------------------------- structure

  static Element root(Document doc) throws Invalid {
    Element root = doc.getDocumentElement();
    if (!SR.equals(root.getNamespaceURI()) || !(root.getLocalName().equals("Request") || root.getLocalName().equals("Response"))) {
      throw new Invalid("the root element is not sr:Request or sr:Response in " + SR);
    }
    return root;
  }

  static List<Element> childElements(Node n) {
    List<Element> out = new ArrayList<>();
    for (Node c = n.getFirstChild(); c != null; c = c.getNextSibling()) {
      if (c.getNodeType() == Node.ELEMENT_NODE) out.add((Element) c);
    }
    return out;
  }

  static Element lastChildElement(Node n) {
    List<Element> l = childElements(n);
    return l.isEmpty() ? null : l.get(l.size() - 1);
  }

  // ---------------------------------------------------------------- sign

  static void sign(Document doc, PrivateKey key, X509Certificate cert) throws Exception {
    Element root;
    try {
      root = root(doc);
    } catch (Invalid e) {
      throw new Fatal(e.getMessage());
    }
    // First the white space (as a verifier sees it, with the old Signature still in place), then
    // the old Signature elements.
    stripElementContentWhitespace(root);
    NodeList old = doc.getElementsByTagNameNS(DS, "Signature");
    List<Node> remove = new ArrayList<>();
    for (int i = 0; i < old.getLength(); i++) remove.add(old.item(i));
    for (Node n : remove) n.getParentNode().removeChild(n);
    root.normalize();

    XMLSignatureFactory fac = XMLSignatureFactory.getInstance("DOM");
    Reference ref =
        fac.newReference(
            "",
            fac.newDigestMethod(SHA256, null),
            Collections.singletonList(fac.newTransform(ENVELOPED, (TransformParameterSpec) null)),
            null,
            null);
    SignedInfo si =
        fac.newSignedInfo(
            fac.newCanonicalizationMethod(EXC_C14N, (C14NMethodParameterSpec) null),
            fac.newSignatureMethod(ECDSA_SHA256, null),
            Collections.singletonList(ref));
    KeyInfoFactory kif = fac.getKeyInfoFactory();
    String issuer = cert.getIssuerX500Principal().getName(X500Principal.RFC2253);
    X509IssuerSerial is = kif.newX509IssuerSerial(issuer, cert.getSerialNumber());
    X509Data xd = kif.newX509Data(Collections.singletonList(is));
    KeyInfo ki = kif.newKeyInfo(Collections.singletonList(xd));
    XMLSignature signature = fac.newXMLSignature(si, ki);

    DOMSignContext ctx = new DOMSignContext(key, root); // appended as the root's last child
    ctx.setDefaultNamespacePrefix("ds");
    signature.sign(ctx);

    Element sigEl = lastChildElement(root);
    if (sigEl == null || !DS.equals(sigEl.getNamespaceURI()) || !"Signature".equals(sigEl.getLocalName())) {
      throw new Fatal("internal: the Signature is not the root's last child");
    }
    // The JDK declares xmlns:ds on the Signature always; the profile declares it there only when
    // the root does not. The Signature element is outside both digests (the enveloped transform
    // removes it, and SignedInfo's exclusive C14N renders xmlns:ds on SignedInfo itself), so this
    // changes no signed byte.
    if (DS.equals(declaredDs(root))) sigEl.removeAttributeNS(XMLNS, "ds");
    // One unbroken base64 line (the JDK may wrap at 76 with CR LF); SignatureValue is not signed.
    Element sv = childElements(sigEl).get(1);
    sv.setTextContent(Base64.getEncoder().encodeToString(Base64.getMimeDecoder().decode(sv.getTextContent())));

    // Self-check: the signature verifies with the certificate (key and certificate belong together).
    Document again = parse(serialize(doc, false).getBytes(StandardCharsets.UTF_8));
    try {
      verify(again, cert);
    } catch (Invalid e) {
      throw new Fatal("the signature made does not verify with the certificate (" + e.getMessage() + "): is the key the certificate's?");
    }
  }

  /** The namespace that element e itself declares for the prefix ds, or null. */
  static String declaredDs(Element e) {
    Attr a = e.getAttributeNodeNS(XMLNS, "ds");
    return a == null ? null : a.getValue();
  }

  // ---------------------------------------------------------------- verify

  static Element one(Element parent, String localName, int index, List<Element> kids) throws Invalid {
    if (kids.size() <= index || !DS.equals(kids.get(index).getNamespaceURI()) || !localName.equals(kids.get(index).getLocalName())) {
      throw new Invalid(parent.getLocalName() + ": child " + (index + 1) + " is not ds:" + localName);
    }
    return kids.get(index);
  }

  static void expectChildren(Element e, String... names) throws Invalid {
    List<Element> kids = childElements(e);
    if (kids.size() != names.length) {
      throw new Invalid("ds:" + e.getLocalName() + " has " + kids.size() + " child elements, the profile has " + names.length);
    }
    for (int i = 0; i < names.length; i++) one(e, names[i], i, kids);
  }

  static void expectAlgorithm(Element e, String alg) throws Invalid {
    if (!e.hasAttribute("Algorithm") || !alg.equals(e.getAttribute("Algorithm"))) {
      throw new Invalid("ds:" + e.getLocalName() + " Algorithm is " + (e.hasAttribute("Algorithm") ? "\"" + e.getAttribute("Algorithm") + "\"" : "missing") + ", the profile has " + alg);
    }
  }

  static byte[] strictBase64(Element e) throws Invalid {
    String s = e.getTextContent().replaceAll("[ \\t\\r\\n]", "");
    try {
      return Base64.getDecoder().decode(s);
    } catch (IllegalArgumentException x) {
      throw new Invalid("ds:" + e.getLocalName() + " is not base64");
    }
  }

  static void verify(Document doc, X509Certificate cert) throws Exception {
    Element root = root(doc);
    stripElementContentWhitespace(root);

    NodeList sigs = doc.getElementsByTagNameNS(DS, "Signature");
    if (sigs.getLength() == 0) throw new Invalid("no ds:Signature");
    if (sigs.getLength() != 1) throw new Invalid(sigs.getLength() + " ds:Signature elements, the profile has one");
    Element sigEl = (Element) sigs.item(0);
    if (sigEl != lastChildElement(root)) throw new Invalid("ds:Signature is not the last child element of the root");

    // Every element of the Signature: namespace ds, prefix ds.
    NodeList all = sigEl.getElementsByTagName("*");
    List<Element> sigElements = new ArrayList<>();
    sigElements.add(sigEl);
    for (int i = 0; i < all.getLength(); i++) sigElements.add((Element) all.item(i));
    for (Element e : sigElements) {
      if (!DS.equals(e.getNamespaceURI())) throw new Invalid("element " + e.getNodeName() + " inside ds:Signature is not in the XML Signature namespace");
      if (!"ds".equals(e.getPrefix())) throw new Invalid("element " + e.getNodeName() + " of the Signature is not prefixed ds");
    }
    boolean rootDeclares = DS.equals(declaredDs(root));
    boolean sigDeclares = declaredDs(sigEl) != null;
    if (rootDeclares && sigDeclares) throw new Invalid("ds:Signature declares xmlns:ds although the root does");
    if (!rootDeclares && !sigDeclares) throw new Invalid("ds:Signature does not declare xmlns:ds and the root does not either");

    // The shape of the profile.
    expectChildren(sigEl, "SignedInfo", "SignatureValue", "KeyInfo");
    List<Element> sk = childElements(sigEl);
    Element signedInfo = sk.get(0), signatureValue = sk.get(1), keyInfo = sk.get(2);
    expectChildren(signedInfo, "CanonicalizationMethod", "SignatureMethod", "Reference");
    List<Element> sik = childElements(signedInfo);
    expectAlgorithm(sik.get(0), EXC_C14N);
    expectChildren(sik.get(0)); // no InclusiveNamespaces
    expectAlgorithm(sik.get(1), ECDSA_SHA256);
    expectChildren(sik.get(1));
    Element reference = sik.get(2);
    if (!reference.hasAttribute("URI")) throw new Invalid("ds:Reference has no URI, the profile has URI=\"\"");
    if (!reference.getAttribute("URI").isEmpty()) throw new Invalid("ds:Reference URI is \"" + reference.getAttribute("URI") + "\", the profile has \"\"");
    expectChildren(reference, "Transforms", "DigestMethod", "DigestValue");
    List<Element> rk = childElements(reference);
    expectChildren(rk.get(0), "Transform");
    Element transform = childElements(rk.get(0)).get(0);
    expectAlgorithm(transform, ENVELOPED);
    expectChildren(transform);
    expectAlgorithm(rk.get(1), SHA256);
    expectChildren(rk.get(1));
    expectChildren(rk.get(2));
    if (strictBase64(rk.get(2)).length != 32) throw new Invalid("ds:DigestValue is not 32 bytes");
    expectChildren(signatureValue);
    if (strictBase64(signatureValue).length != 64) throw new Invalid("ds:SignatureValue is not 64 bytes (raw r||s on P-256)");

    // KeyInfo names the given certificate.
    expectChildren(keyInfo, "X509Data");
    Element x509Data = childElements(keyInfo).get(0);
    expectChildren(x509Data, "X509IssuerSerial");
    Element issuerSerial = childElements(x509Data).get(0);
    expectChildren(issuerSerial, "X509IssuerName", "X509SerialNumber");
    String issuerText = childElements(issuerSerial).get(0).getTextContent();
    String serialText = childElements(issuerSerial).get(1).getTextContent();
    X500Principal issuer;
    try {
      issuer = new X500Principal(issuerText);
    } catch (IllegalArgumentException e) {
      throw new Invalid("ds:X509IssuerName is not a distinguished name");
    }
    if (!issuer.getName(X500Principal.RFC2253).equals(issuerText)) {
      throw new Invalid("ds:X509IssuerName \"" + issuerText + "\" is not in RFC 2253 form (\"" + issuer.getName(X500Principal.RFC2253) + "\")");
    }
    if (!serialText.matches("[0-9]+")) throw new Invalid("ds:X509SerialNumber is not a decimal number");
    if (!issuer.equals(cert.getIssuerX500Principal())) throw new Invalid("ds:X509IssuerName does not name the certificate's issuer");
    if (!new BigInteger(serialText).equals(cert.getSerialNumber())) throw new Invalid("ds:X509SerialNumber is not the certificate's serial number");

    // The cryptography, with the given certificate's key only.
    DOMValidateContext ctx = new DOMValidateContext(cert.getPublicKey(), sigEl);
    ctx.setProperty("org.jcp.xml.dsig.secureValidation", Boolean.TRUE);
    XMLSignatureFactory fac = XMLSignatureFactory.getInstance("DOM");
    XMLSignature sig;
    try {
      sig = fac.unmarshalXMLSignature(ctx);
    } catch (javax.xml.crypto.MarshalException e) {
      throw new Invalid("ds:Signature does not unmarshal: " + e.getMessage());
    }
    // The same profile, as the JDK read it.
    SignedInfo si = sig.getSignedInfo();
    if (!EXC_C14N.equals(si.getCanonicalizationMethod().getAlgorithm())) throw new Invalid("canonicalization method");
    Object c14nParams = si.getCanonicalizationMethod().getParameterSpec();
    if (c14nParams != null && !((ExcC14NParameterSpec) c14nParams).getPrefixList().isEmpty()) throw new Invalid("InclusiveNamespaces on the canonicalization method");
    if (!ECDSA_SHA256.equals(si.getSignatureMethod().getAlgorithm())) throw new Invalid("signature method");
    if (si.getReferences().size() != 1) throw new Invalid("references");
    Reference ref = si.getReferences().get(0);
    if (!"".equals(ref.getURI())) throw new Invalid("reference URI");
    if (ref.getTransforms().size() != 1 || !ENVELOPED.equals(ref.getTransforms().get(0).getAlgorithm())) throw new Invalid("transforms");
    if (!SHA256.equals(ref.getDigestMethod().getAlgorithm())) throw new Invalid("digest method");
    if (!sig.getObjects().isEmpty()) throw new Invalid("ds:Object");

    boolean ok;
    try {
      ok = sig.validate(ctx);
    } catch (javax.xml.crypto.dsig.XMLSignatureException e) {
      throw new Invalid("validation failed: " + e.getMessage());
    }
    if (ok) return;
    boolean refOk = ref.validate(ctx);
    boolean sigOk = sig.getSignatureValue().validate(ctx);
    if (!refOk) throw new Invalid("reference digest mismatch (the document was changed)" + (sigOk ? "" : "; signature value does not verify"));
    throw new Invalid("signature value does not verify with the certificate's key");
  }

  // ---------------------------------------------------------------- output

  static void writeUtf8(OutputStream out, String s) throws IOException {
    Writer w = new OutputStreamWriter(out, StandardCharsets.UTF_8);
    w.write(s);
    w.flush();
  }

  /**
   * The document as UTF-8 text, without an XML declaration. Attributes (namespace declarations
   * included) are written as the DOM holds them; nothing is added. Pretty: two-space indentation
   * inside elements whose children are all elements, comments or processing instructions.
   */
  static String serialize(Document doc, boolean pretty) {
    StringBuilder sb = new StringBuilder();
    boolean first = true;
    for (Node c = doc.getFirstChild(); c != null; c = c.getNextSibling()) {
      if (pretty && !first) sb.append('\n');
      write(sb, c, pretty, 0);
      first = false;
    }
    if (pretty) sb.append('\n');
    return sb.toString();
  }

  static void indent(StringBuilder sb, int depth) {
    sb.append('\n');
    for (int i = 0; i < depth; i++) sb.append("  ");
  }

  static void write(StringBuilder sb, Node n, boolean pretty, int depth) {
    switch (n.getNodeType()) {
      case Node.ELEMENT_NODE: {
        sb.append('<').append(n.getNodeName());
        // Namespace declarations first, then the other attributes (each in the DOM's order).
        NamedNodeMap attrs = n.getAttributes();
        for (int pass = 0; pass < 2; pass++) {
          for (int i = 0; i < attrs.getLength(); i++) {
            Attr a = (Attr) attrs.item(i);
            if (XMLNS.equals(a.getNamespaceURI()) != (pass == 0)) continue;
            sb.append(' ').append(a.getName()).append("=\"").append(escapeAttr(a.getValue())).append('"');
          }
        }
        if (n.getFirstChild() == null) {
          sb.append("/>");
          return;
        }
        sb.append('>');
        boolean block = pretty;
        for (Node c = n.getFirstChild(); c != null && block; c = c.getNextSibling()) {
          short t = c.getNodeType();
          if (t != Node.ELEMENT_NODE && t != Node.COMMENT_NODE && t != Node.PROCESSING_INSTRUCTION_NODE) block = false;
        }
        for (Node c = n.getFirstChild(); c != null; c = c.getNextSibling()) {
          if (block) indent(sb, depth + 1);
          write(sb, c, block, depth + 1);
        }
        if (block) indent(sb, depth);
        sb.append("</").append(n.getNodeName()).append('>');
        return;
      }
      case Node.TEXT_NODE:
      case Node.CDATA_SECTION_NODE:
        sb.append(escapeText(n.getNodeValue()));
        return;
      case Node.COMMENT_NODE:
        sb.append("<!--").append(n.getNodeValue()).append("-->");
        return;
      case Node.PROCESSING_INSTRUCTION_NODE:
        sb.append("<?").append(n.getNodeName());
        if (!n.getNodeValue().isEmpty()) sb.append(' ').append(n.getNodeValue());
        sb.append("?>");
        return;
      case Node.ENTITY_REFERENCE_NODE:
        for (Node c = n.getFirstChild(); c != null; c = c.getNextSibling()) write(sb, c, false, depth);
        return;
      default:
        return; // no DOCTYPE gets this far
    }
  }

  static String escapeText(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '&': b.append("&amp;"); break;
        case '<': b.append("&lt;"); break;
        case '>': b.append("&gt;"); break;
        case '\r': b.append("&#xD;"); break;
        default: b.append(c);
      }
    }
    return b.toString();
  }

  static String escapeAttr(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '&': b.append("&amp;"); break;
        case '<': b.append("&lt;"); break;
        case '"': b.append("&quot;"); break;
        case '\t': b.append("&#x9;"); break;
        case '\n': b.append("&#xA;"); break;
        case '\r': b.append("&#xD;"); break;
        default: b.append(c);
      }
    }
    return b.toString();
  }
}
