import NIOHTTP1
import NIOPosix
