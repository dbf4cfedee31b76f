"""The conformance matrix through Python grpcio (the C-core client Python services use), with
stubs generated at test time (conftest.py `stubs`)."""

import functools
import threading

import grpc
import pytest
from google.protobuf import json_format, message_factory

import matrix

# Large enough for the 1 MiB messages of the large-stream scenarios.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class GrpcioClient:
    def __init__(self, stubs):
        self.pb, self.rpc = stubs
        self.service = self.pb.DESCRIPTOR.services_by_name["ObjectService"]

    @functools.cache
    def stub(self, address: str, gzip: bool):
        channel = grpc.insecure_channel(
            address,
            compression=grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        return self.rpc.ObjectServiceStub(channel)

    def call(self, call: matrix.Call) -> matrix.Observation:
        method = self.service.methods_by_name[call.rpc]
        request_class = message_factory.GetMessageClass(method.input_type)
        invoke = getattr(self.stub(call.address, call.gzip), call.rpc)
        options = {
            "metadata": call.metadata,
            "timeout": call.deadline_ms / 1000 if call.deadline_ms is not None else None,
        }
        requests = [json_format.ParseDict(m, request_class()) for m in (call.messages or [call.request])]
        try:
            if call.cancel_when is not None:
                return self._cancel_stream(invoke, requests, call.cancel_when, options)
            if method.server_streaming:
                stream = invoke(requests[0], **options)
                messages = [json_format.MessageToDict(m) for m in stream]
                return matrix.Observation(
                    code="OK",
                    messages=messages,
                    headers=matrix.transport_free(stream.initial_metadata()),
                    trailers=matrix.transport_free(stream.trailing_metadata()),
                )
            argument = iter(requests) if method.client_streaming else requests[0]
            response, outcome = invoke.with_call(argument, **options)
            return matrix.Observation(
                code="OK",
                response=json_format.MessageToDict(response),
                headers=matrix.transport_free(outcome.initial_metadata()),
                trailers=matrix.transport_free(outcome.trailing_metadata()),
            )
        except grpc.RpcError as err:
            return failure(err)

    @staticmethod
    def _cancel_stream(invoke, requests, cancel_when, options) -> matrix.Observation:
        """Sends `requests` on a client stream that is then left open, and cancels the call
        once `cancel_when` returns."""
        sent = threading.Event()
        release = threading.Event()

        def messages():
            yield from requests
            sent.set()
            release.wait()

        future = invoke.future(messages(), **options)
        try:
            # A call the gateway ends before it takes every message is what the cell sees.
            while not sent.wait(0.05):
                if future.done():
                    return failure(future)
            cancel_when()
            future.cancel()
        finally:
            release.set()
        return matrix.Observation(code=future.code().name, message=future.details() or "")


def failure(err: grpc.RpcError) -> matrix.Observation:
    trailers = err.trailing_metadata() or ()
    seen = matrix.Observation(
        code=err.code().name,
        message=err.details() or "",
        headers=matrix.transport_free(err.initial_metadata() or ()),
        trailers=matrix.transport_free(trailers),
    )
    raw = dict(trailers).get("grpc-status-details-bin")
    if raw is not None:
        code, message, seen.details = matrix.decode_status(raw)
        seen.status_proto = (matrix.code_name(code), message)
    return seen


@pytest.fixture(scope="module")
def client(stubs):
    return GrpcioClient(stubs)


@pytest.mark.parametrize("cell", matrix.cells("grpcio"), ids=lambda c: c.id)
def test_grpcio(cell, client, world):
    matrix.run_scenario(client, world, cell)
