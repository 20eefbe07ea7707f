-- wrk script: POST one embedding request (about 20 tokens) per call.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"qwen3-tiny-synth","input":"load test: a short sentence of about twenty tokens that the server embeds again and again"}'
