import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { loadPackageDefinition, status, type Server, type ServerDuplexStream } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DESCRIPTOR_SET_BASE64 } from "../../gen/descriptor-set.js";

/**
 * gRPC server reflection (v1 and v1alpha) over the exact descriptors buf
 * built from proto/, so grpcurl and friends work without the .proto files.
 * (@grpc/reflection serves proto-loader's per-package merged files, which
 * lose their imports and break google.protobuf types.)
 */
export function addReflection(server: Server): void {
  const index = new DescriptorIndex(DESCRIPTOR_SET_BASE64);
  const require = createRequire(import.meta.url);
  const protoDir = join(dirname(require.resolve("@grpc/reflection")), "..", "proto");
  for (const version of ["v1", "v1alpha"]) {
    const definition = loadSync(join(protoDir, "grpc", "reflection", version, "reflection.proto"), {
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = loadPackageDefinition(definition) as unknown as {
      grpc: { reflection: Record<string, { ServerReflection: { service: Parameters<Server["addService"]>[0] } }> };
    };
    server.addService(pkg.grpc.reflection[version]!.ServerReflection.service, {
      ServerReflectionInfo: (stream: ServerDuplexStream<ReflectionRequest, unknown>) => {
        stream.on("data", (request: ReflectionRequest) => stream.write(index.answer(request)));
        stream.on("end", () => stream.end());
      },
    });
  }
}

interface ReflectionRequest {
  host?: string;
  messageRequest?: string;
  fileByFilename?: string;
  fileContainingSymbol?: string;
  listServices?: string;
}

class DescriptorIndex {
  private readonly files = new Map<string, FileDescriptorProto>();
  private readonly encoded = new Map<string, Buffer>();
  private readonly symbols = new Map<string, string>(); // fully-qualified name -> file name
  private readonly services: string[] = [];

  constructor(base64: string) {
    const set = fromBinary(FileDescriptorSetSchema, Buffer.from(base64, "base64"));
    for (const file of set.file) {
      if (this.files.has(file.name)) continue;
      this.files.set(file.name, file);
      this.encoded.set(file.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file)));
      const prefix = file.package ? `${file.package}.` : "";
      for (const message of file.messageType) this.indexMessage(message, prefix, file.name);
      for (const e of file.enumType) this.symbols.set(prefix + e.name, file.name);
      for (const service of file.service) {
        const name = prefix + service.name;
        this.symbols.set(name, file.name);
        for (const method of service.method) this.symbols.set(`${name}.${method.name}`, file.name);
        if (!name.startsWith("grpc.reflection.")) this.services.push(name);
      }
    }
    this.services.push("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection");
  }

  answer(request: ReflectionRequest): Record<string, unknown> {
    const base = { validHost: request.host ?? "", originalRequest: request };
    switch (request.messageRequest) {
      case "listServices":
        return { ...base, listServicesResponse: { service: this.services.map((name) => ({ name })) } };
      case "fileByFilename":
        return this.fileAnswer(base, request.fileByFilename ?? "");
      case "fileContainingSymbol":
        return this.fileAnswer(base, this.symbols.get(request.fileContainingSymbol ?? "") ?? "");
      default:
        return { ...base, errorResponse: { errorCode: status.UNIMPLEMENTED, errorMessage: "not supported" } };
    }
  }

  /** The file and everything it imports, transitively. */
  private fileAnswer(base: Record<string, unknown>, name: string): Record<string, unknown> {
    if (!this.files.has(name)) {
      return { ...base, errorResponse: { errorCode: status.NOT_FOUND, errorMessage: "not found" } };
    }
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file) || !this.files.has(file)) return;
      seen.add(file);
      for (const dependency of this.files.get(file)!.dependency) visit(dependency);
    };
    visit(name);
    return { ...base, fileDescriptorResponse: { fileDescriptorProto: [...seen].map((f) => this.encoded.get(f)) } };
  }

  private indexMessage(message: DescriptorProto, prefix: string, file: string): void {
    const name = prefix + message.name;
    this.symbols.set(name, file);
    for (const nested of message.nestedType) this.indexMessage(nested, `${name}.`, file);
    for (const e of message.enumType) this.symbols.set(`${name}.${e.name}`, file);
  }
}
