/**
 * Dawn's own log records, recognized in a stream of text so that they can be held back.
 *
 * Dawn (the `webgpu` package) logs from native code straight to the process's stderr, with no
 * switch to turn it off, while it probes adapters: e.g.
 *
 * ```text
 * Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.
 *  - While initializing adapter (backend=BackendType::Vulkan)
 *     at InitializeImpl (/…/third_party/dawn/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:257)
 *
 * Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit …
 * ```
 *
 * A record is a line `Severity: message` (Dawn's `LogMessage` format, severities `Debug`, `Info`,
 * `Warning`), then any context lines (` - While …`) and source locations (`    at Fn (file:line)`),
 * then at most one blank line. `Error:` records are kept: they explain failures. Nothing else
 * dbn-node writes starts a line with those words (its messages start `dbn-node:`; Node's own
 * warnings start `(node:PID)`), and the filter is only put in front of runs that start Dawn.
 */

const RECORD_START = /^(?:Debug|Info|Warning): \S/;
const CONTEXT = /^ - \S/;
const LOCATION = /^\s+at \S.*\(.*:\d+\)$/;

/**
 * A line filter over chunks of text: {@link push} returns what passes (whole lines; a partial
 * last line waits for its end), {@link end} the rest. {@link held} counts the lines held back.
 */
export class DawnLogFilter {
  #pending = '';
  #inRecord = false;
  #held = 0;

  /** Lines held back so far. */
  get held(): number {
    return this.#held;
  }

  /** The complete lines of `chunk` (with what was pending) that are not Dawn's. */
  push(chunk: string): string {
    const lines = (this.#pending + chunk).split('\n');
    this.#pending = lines.pop() ?? '';
    let out = '';
    for (const line of lines) if (this.#keep(line)) out += `${line}\n`;
    return out;
  }

  /** What is left at the end of the stream (a last line without a newline). */
  end(): string {
    const last = this.#pending;
    this.#pending = '';
    return last !== '' && this.#keep(last) ? last : '';
  }

  #keep(line: string): boolean {
    if (RECORD_START.test(line)) {
      this.#inRecord = true;
    } else if (this.#inRecord && (CONTEXT.test(line) || LOCATION.test(line))) {
      // part of the record
    } else if (this.#inRecord && line === '') {
      this.#inRecord = false;
    } else {
      this.#inRecord = false;
      return true;
    }
    this.#held++;
    return false;
  }
}
