import { credentials, Metadata, type ChannelCredentials, type Interceptor, type ServiceError } from "@grpc/grpc-js";
import { AdminServiceClient, type Change, type PutMembershipRequest, type WatchChangesRequest, type WriteResponse } from "../gen/bulkhead/v1/admin.js";
import { DecisionServiceClient } from "../gen/bulkhead/v1/decision.js";
import { EntitlementServiceClient } from "../gen/bulkhead/v1/entitlements.js";
import { FlagServiceClient } from "../gen/bulkhead/v1/flags.js";
import type { ChangeHandlers, ChangeSubscription, Transport, TransportCallOptions } from "./transport.js";

/** Where and how {@link GrpcTransport} connects. */
export interface GrpcTransportOptions {
  /** `host:port` of the sidecar's gRPC listener. */
  address: string;
  /** Channel credentials; insecure (loopback sidecar) by default. */
  credentials?: ChannelCredentials;
  /** Caller token sent as `authorization: Bearer` on Decision and Entitlement calls (the sidecar's `callerTokens`). */
  callerToken?: string;
  /** Admin token for AdminService calls: writes such as `putMembership`, and WatchChanges for the decision cache (a directory-sync token is enough for that). */
  adminToken?: string;
  /** Who is behind a shared admin token (`bulkhead-actor`), required by the sidecar for shared credentials. */
  operator?: string;
  /** grpc-js client interceptors (tracing, metrics), applied to every call. */
  interceptors?: Interceptor[];
}

type Unary<Req, Res> = (request: Req, metadata: Metadata, options: { deadline: number }, callback: (error: ServiceError | null, response: Res) => void) => unknown;

/** {@link Transport} over a real gRPC channel to a Bulkhead sidecar. */
export class GrpcTransport implements Transport {
  private readonly decisions: DecisionServiceClient;
  private readonly entitlements: EntitlementServiceClient;
  private readonly admin: AdminServiceClient;
  private readonly flags: FlagServiceClient;

  /** Opens (lazily) one channel per service to `options.address`. */
  constructor(private readonly options: GrpcTransportOptions) {
    const creds = options.credentials ?? credentials.createInsecure();
    const clientOptions = { interceptors: options.interceptors ?? [] };
    this.decisions = new DecisionServiceClient(options.address, creds, clientOptions);
    this.entitlements = new EntitlementServiceClient(options.address, creds, clientOptions);
    this.admin = new AdminServiceClient(options.address, creds, clientOptions);
    this.flags = new FlagServiceClient(options.address, creds, clientOptions);
  }

  /** DecisionService.Check. */
  check = this.bind(() => this.decisions, "check", () => this.callerMetadata());
  /** DecisionService.BatchCheck. */
  batchCheck = this.bind(() => this.decisions, "batchCheck", () => this.callerMetadata());
  /** DecisionService.ResolveContext. */
  resolveContext = this.bind(() => this.decisions, "resolveContext", () => this.callerMetadata());
  /** FlagService.EvaluateFlags. */
  evaluateFlags = this.bind(() => this.flags, "evaluateFlags", () => this.callerMetadata());
  /** EntitlementService.Consume. */
  consume = this.bind(() => this.entitlements, "consume", () => this.callerMetadata());
  /** AdminService.PutMembership, with the admin token and operator as metadata. */
  putMembership: (request: PutMembershipRequest, options: TransportCallOptions) => Promise<WriteResponse> = this.bind(
    () => this.admin, "putMembership", () => this.adminMetadata(),
  );

  /** AdminService.WatchChanges with the admin token; each handler fires as {@link ChangeHandlers} promises. */
  watchChanges(request: WatchChangesRequest, handlers: ChangeHandlers): ChangeSubscription {
    const stream = this.admin.watchChanges(request, this.adminMetadata());
    let ended = false;
    const end = (error?: unknown) => {
      if (ended) return;
      ended = true;
      handlers.onEnd(error);
    };
    stream.on("metadata", () => !ended && handlers.onOpen());
    stream.on("data", (change: Change) => !ended && handlers.onChange(change));
    stream.on("error", (error) => end(error));
    stream.on("end", () => end());
    stream.on("close", () => end());
    return { cancel: () => { stream.cancel(); end(); } };
  }

  /** Closes all channels. */
  close(): void {
    this.decisions.close();
    this.entitlements.close();
    this.admin.close();
    this.flags.close();
  }

  private bind<C extends object, M extends keyof C>(client: () => C, method: M, metadata: () => Metadata) {
    type Fn = C[M] extends (request: infer Req, metadata: Metadata, options: never, cb: (e: ServiceError | null, r: infer Res) => void) => unknown
      ? [Req, Res] : never;
    return (request: Fn[0], options: TransportCallOptions): Promise<Fn[1]> =>
      new Promise((resolve, reject) => {
        const target = client();
        (target[method] as unknown as Unary<Fn[0], Fn[1]>).call(target, request, metadata(), { deadline: options.deadline }, (error, response) =>
          error ? reject(error) : resolve(response),
        );
      });
  }

  private callerMetadata(): Metadata {
    const md = new Metadata();
    if (this.options.callerToken) md.set("authorization", `Bearer ${this.options.callerToken}`);
    return md;
  }

  private adminMetadata(): Metadata {
    const md = new Metadata();
    if (this.options.adminToken) md.set("authorization", `Bearer ${this.options.adminToken}`);
    if (this.options.operator) md.set("bulkhead-actor", this.options.operator);
    return md;
  }
}
