import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import { service } from "grpc-health-check";

const HealthClient = makeGenericClientConstructor(service, "Health");

/** The standard grpc.health.v1 Check against a sidecar, as a load balancer asks it. */
export function healthClient(address: string): { check(service?: string): Promise<string>; close(): void } {
  const client = new HealthClient(address, credentials.createInsecure()) as Client & Record<string, Function>;
  return {
    check: (name = "") =>
      new Promise((resolve, reject) =>
        client.check!({ service: name }, (error: ServiceError | null, response: { status: string | number }) =>
          error ? reject(error) : resolve(String(response.status)),
        ),
      ),
    close: () => client.close(),
  };
}
