// The independent Java implementation of the DUIS XML signature profile (test/java/DuisXmlSig.java,
// JDK only) for the interoperability tests: compile it once per process, run its subcommands.
//
//   const classDir = await compileJava();
//   runJava(classDir, ['sign', 'in.xml', 'key.pk8.pem', 'cert.pem'])   // stdout: the signed document
//   runJava(classDir, ['verify', '-', 'cert.pem'], signedXml)          // stdout: VALID | INVALID <reason>
//   runJava(classDir, ['verify-batch', 'cert.pem', ...files])          // one line per file
//
// Exit status: 0 signed / VALID, 1 INVALID, 2 usage, I/O or parse error (a DOCTYPE included).
// The signed output is UTF-8 without an XML declaration and without a trailing newline.
// A JDK 17 is needed (scripts/bootstrap.sh `ensure_java` installs openjdk-17-jdk-headless).
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const JAVA_SOURCE = join(import.meta.dirname, 'java', 'DuisXmlSig.java');
export const JAVA_CLASS = 'DuisXmlSig';
/** A quick JVM start: class data sharing, and the C1 compiler only (the runs are short). */
const JVM_FLAGS = ['-Xshare:auto', '-XX:TieredStopAtLevel=1'];

export interface JavaResult {
  status: number;
  stdout: string;
  stderr: string;
}

let compiled: Promise<string> | undefined;

/** Compiles DuisXmlSig.java into a temporary class directory (once per process) and returns it. */
export function compileJava(): Promise<string> {
  compiled ??= compile().catch((e: unknown) => {
    compiled = undefined; // a later call tries again
    throw e;
  });
  return compiled;
}

async function compile(): Promise<string> {
  const probe = spawnSync('javac', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `javac not found or not working (${probe.error?.message ?? probe.stderr.trim()}): the Java interoperability tests need a JDK 17; ` +
        'scripts/bootstrap.sh installs openjdk-17-jdk-headless (ensure_java)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'smki-duis-java-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  try {
    await promisify(execFile)('javac', ['-encoding', 'UTF-8', '-d', dir, JAVA_SOURCE], { timeout: 120_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`javac failed on ${JAVA_SOURCE}: ${err.stderr || err.message}`);
  }
  return dir;
}

/**
 * Runs `java DuisXmlSig <args>` from the class directory that compileJava returned; `input` is
 * its standard input (pass "-" as the file argument to read it). Throws if Java cannot start or
 * runs longer than `timeoutMs`.
 */
export function runJava(classDir: string, args: string[], input?: string | Buffer, timeoutMs = 60_000): JavaResult {
  const r = spawnSync('java', [...JVM_FLAGS, '-cp', classDir, JAVA_CLASS, ...args], {
    input: input ?? '',
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Error(`java ${JAVA_CLASS} ${args.join(' ')}: ${r.error.message}`);
  if (r.status === null) throw new Error(`java ${JAVA_CLASS} ${args.join(' ')}: killed by ${r.signal ?? 'a signal'} (timeout ${timeoutMs} ms?)`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
