import AsyncHTTPClient
import ArgumentParser
import Configuration
import Hummingbird
print("warm")
