// `Context`: what the host knows about the running invocation.

export class Context {
  constructor(invocationId, functionName, functionVersion, deadlineUnixMs, memoryLimitMb) {
    this.invocationId = invocationId;
    this.functionName = functionName;
    this.functionVersion = functionVersion;
    this.deadlineUnixMs = deadlineUnixMs; // past it, the instance is stopped
    this.memoryLimitMb = memoryLimitMb;
  }

  /** Milliseconds left before the deadline (0 once it has passed). */
  remainingMs() {
    return Math.max(0, this.deadlineUnixMs - Date.now());
  }

  /** The SDK's context for the bindings' record (u64 arrives as a BigInt). */
  static fromWit(ctx) {
    return new Context(
      ctx.invocationId,
      ctx.functionName,
      ctx.functionVersion,
      Number(ctx.deadlineUnixMs),
      ctx.memoryLimitMb,
    );
  }
}
