from pipeline.hls.cli import run

run()
